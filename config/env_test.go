package config

import (
	"reflect"
	"testing"
)

// TestEnvRefs: every reference is listed with its line, keys and several
// per value included, as Parse would expand them; a file YAML cannot read
// is an error.
func TestEnvRefs(t *testing.T) {
	data := []byte("listen: ${HOST}:${PORT}\ncredentials:\n  - secret: ${A_SECRET}\n    id: plain $NOT_A_REF {X}\n${KEY}: v\n")
	got, err := EnvRefs(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvRef{{"HOST", 1}, {"PORT", 1}, {"A_SECRET", 3}, {"KEY", 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EnvRefs = %v, want %v", got, want)
	}
	if _, err := EnvRefs([]byte("a: [\n")); err == nil {
		t.Error("EnvRefs of broken YAML: no error")
	}
}
