package token

import (
	"reflect"
	"testing"
	"time"
)

// TestHeldKeepsEveryField: a record kept by an entry comes back whole.
// Every field of record is set, by reflection, so that a field added to
// record and forgotten in held fails here.
func TestHeldKeepsEveryField(t *testing.T) {
	var r record
	v := reflect.ValueOf(&r).Elem()
	base := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString(v.Type().Field(i).Name)
		case time.Time:
			f.Set(reflect.ValueOf(base.Add(time.Duration(i) * time.Minute)))
		case int:
			f.SetInt(int64(i))
		case bool:
			f.SetBool(true)
		case *Cause:
			f.Set(reflect.ValueOf(&Cause{Class: "retry", Message: "m"}))
		default:
			t.Fatalf("record.%s: a field of type %s; teach this test and held about it", v.Type().Field(i).Name, f.Type())
		}
	}
	h := hold(r)
	got := h.record()
	gv := reflect.ValueOf(got)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		want, have := v.Field(i).Interface(), gv.Field(i).Interface()
		if wt, ok := want.(time.Time); ok {
			if !wt.Equal(have.(time.Time)) {
				t.Errorf("record.%s = %v after hold, want %v", name, have, want)
			}
			continue
		}
		if !reflect.DeepEqual(want, have) {
			t.Errorf("record.%s = %v after hold, want %v", name, have, want)
		}
	}
	if zero := (&held{}).record(); !zero.IssuedAt.IsZero() || !zero.Checked.IsZero() {
		t.Errorf("zero times come back as %v, %v; want zero", zero.IssuedAt, zero.Checked)
	}
}
