package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// TestSign checks the signature against HMAC-SHA256 computed here from
// the contract's words, and against a fixed vector computed elsewhere
// (Python: hmac.new(b"0123456789abcdef", b"1700000000.{}", "sha256")).
func TestSign(t *testing.T) {
	at := time.Unix(1700000000, 0)
	body := []byte("{}")
	mac := hmac.New(sha256.New, []byte("0123456789abcdef"))
	fmt.Fprintf(mac, "%d.%s", at.Unix(), body)
	want := fmt.Sprintf("t=1700000000,v1=%x", mac.Sum(nil))
	if got := Sign("0123456789abcdef", at, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	const vector = "t=1700000000,v1=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
	if got := Sign("0123456789abcdef", at, body); got != vector {
		t.Errorf("Sign = %s, want the vector %s", got, vector)
	}
}
