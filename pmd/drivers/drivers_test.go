package drivers

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/pmd"
)

var update = flag.Bool("update", false, "rewrite docs/drivers.md's generated section")

const (
	docPath  = "../../docs/drivers.md"
	docBegin = "<!-- BEGIN GENERATED: pmd.Markdown(), go test ./pmd/drivers -update -->\n"
	docEnd   = "<!-- END GENERATED -->\n"
)

// TestDocsCurrent: docs/drivers.md shows the arguments the drivers declare
// (pmd.Driver.Args), not a copy that drifts.
func TestDocsCurrent(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated section (%q ... %q)", docPath, docBegin, docEnd)
	}
	want := doc[:i+len(docBegin)] + pmd.Markdown() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date: go test ./pmd/drivers -update", docPath)
}

// TestArgsDescribed: every driver describes its arguments consistently
// and opens nothing it cannot check: its defaults pass its own check.
func TestArgsDescribed(t *testing.T) {
	for _, d := range pmd.Drivers() {
		if d.Help == "" {
			t.Errorf("driver %s has no help", d.Name)
		}
		for _, a := range d.Args {
			if a.Help == "" {
				t.Errorf("driver %s: argument %s has no help", d.Name, a.Name)
			}
		}
	}
}

// FuzzCheck: pmd.Check never panics, whatever the driver and arguments,
// and accepts what it accepts consistently (seeded from the descriptions).
func FuzzCheck(f *testing.F) {
	for _, d := range pmd.Drivers() {
		for _, a := range d.Args {
			f.Add(d.Name, a.Name, a.Default)
			for _, c := range a.Choices {
				f.Add(d.Name, a.Name, c)
			}
			f.Add(d.Name, a.Name, "m0 m1")
		}
	}
	f.Fuzz(func(t *testing.T, driver, key, value string) {
		a := pmd.Args{key: value}
		err1 := pmd.Check(driver, a)
		err2 := pmd.Check(driver, a)
		if (err1 == nil) != (err2 == nil) {
			t.Fatal("Check is not deterministic")
		}
	})
}
