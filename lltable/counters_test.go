package lltable

import (
	"reflect"
	"testing"
)

// Every field of Counters is in List (each drop reason once), with a
// distinct name: what the table counts is what show stats and the metrics
// show.
func TestCountersListComplete(t *testing.T) {
	var c Counters
	v := reflect.ValueOf(&c).Elem()
	n := uint64(1)
	want := map[uint64]bool{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Array {
			for j := 1; j < f.Len(); j++ { // Dropped[DropNone] is never counted
				f.Index(j).SetUint(n)
				want[n] = true
				n++
			}
			continue
		}
		f.SetUint(n)
		want[n] = true
		n++
	}
	names := map[string]bool{}
	for _, x := range c.List() {
		if names[x.Name] {
			t.Errorf("name %s twice", x.Name)
		}
		names[x.Name] = true
		if !want[x.Value] {
			t.Errorf("%s: value %d listed twice or not a field", x.Name, x.Value)
		}
		delete(want, x.Value)
	}
	if len(want) != 0 {
		t.Errorf("%d counters missing from List", len(want))
	}
}
