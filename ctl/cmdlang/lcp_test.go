package cmdlang

import (
	"strings"
	"testing"
)

func TestParseLCPFib(t *testing.T) {
	tests := []struct {
		line string
		want *LCPFib
		err  string
	}{
		{"lcp fib 1 table 101", &LCPFib{FIB: 1, Table: 101}, ""},
		{"lcp fib 0 table main", &LCPFib{FIB: 0, Table: 254}, ""},
		{"lcp fib 2 off", &LCPFib{FIB: 2, Off: true}, ""},
		{"lcp fib 1 table 4294967295", &LCPFib{FIB: 1, Table: 4294967295}, ""},
		{"lcp fib 1 table 255", nil, "local"},
		{"lcp fib 1 table 0", nil, "not a table id"},
		{"lcp fib 1 table x", nil, "not a table id"},
		{"lcp fib 1", nil, "missing"},
		{"lcp fib", nil, "missing the FIB"},
		{"lcp fib 5000 table 7", nil, "FIB"},
		{"lcp fob 1", nil, "lcp fib N"},
		{"lcp fib 1 table 7 extra", nil, "unexpected"},
		{"lcp fib 1 bogus", nil, "table T or off"},
	}
	for _, tt := range tests {
		c, err := ParseLine(tt.line)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		got, ok := c.(*LCPFib)
		if !ok || got.FIB != tt.want.FIB || got.Table != tt.want.Table || got.Off != tt.want.Off {
			t.Errorf("%q: got %#v, want %#v", tt.line, c, tt.want)
			continue
		}
		// The canonical text parses back to the same command.
		back, err := ParseLine(c.String())
		if err != nil || back.(*LCPFib).Table != got.Table || back.(*LCPFib).Off != got.Off {
			t.Errorf("%q: round trip %q: %v", tt.line, c.String(), err)
		}
	}
	if c, err := ParseLine("show lcp"); err != nil || !IsShow(c) {
		t.Errorf("show lcp: %v %v", c, err)
	}
}
