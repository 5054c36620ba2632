package cmdlang

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: no input panics; an accepted line's canonical text parses back
// to the same command; a rejected line yields no command and an *Error; a
// file with a rejected line yields no command at all.
func FuzzParse(f *testing.F) {
	for _, tc := range parseOK {
		f.Add(tc.in)
	}
	for _, tc := range parseErr {
		if len(tc.in) < 1000 {
			f.Add(tc.in)
		}
	}
	f.Add(goodFile)
	f.Fuzz(func(t *testing.T, in string) {
		for _, line := range strings.Split(in, "\n") {
			c, err := ParseLine(line)
			if err != nil {
				if c != nil {
					t.Fatalf("%q: command and error", line)
				}
				if _, ok := err.(*Error); !ok {
					t.Fatalf("%q: error %T", line, err)
				}
				continue
			}
			if c == nil {
				continue
			}
			again, err := ParseLine(c.String())
			if err != nil {
				t.Fatalf("%q: canonical %q rejected: %v", line, c.String(), err)
			}
			if !reflect.DeepEqual(again, c) {
				t.Fatalf("%q: canonical %q parses to %#v, want %#v", line, c.String(), again, c)
			}
		}
		cmds, err := Parse(strings.NewReader(in), Options{File: "f"})
		if err != nil && cmds != nil {
			t.Fatalf("Parse returned %d commands with an error", len(cmds))
		}
	})
}
