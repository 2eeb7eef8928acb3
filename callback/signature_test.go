package callback

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestVerifySignature(t *testing.T) {
	tests := []struct {
		name                    string
		token, timestamp, nonce string
		signature               string
		want                    bool
	}{
		{"sample", plainToken, plainTimestamp, plainNonce, plainSignature, true},
		{"uppercase hex", plainToken, plainTimestamp, plainNonce, strings.ToUpper(plainSignature), false},
		{"other token", "AAAAB", plainTimestamp, plainNonce, plainSignature, false},
		{"other timestamp", plainToken, "1714037060", plainNonce, plainSignature, false},
		{"other nonce", plainToken, plainTimestamp, "486452657", plainSignature, false},
		{"truncated", plainToken, plainTimestamp, plainNonce, plainSignature[:39], false},
		{"extended", plainToken, plainTimestamp, plainNonce, plainSignature + "0", false},
		{"empty signature", plainToken, plainTimestamp, plainNonce, "", false},
		{"empty token", "", plainTimestamp, plainNonce, Signature("", plainTimestamp, plainNonce), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.token, tt.timestamp, tt.nonce, tt.signature); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyMsgSignature(t *testing.T) {
	tests := []struct {
		name                             string
		token, timestamp, nonce, encrypt string
		signature                        string
		want                             bool
	}{
		{"OA sample", oaToken, oaTimestamp, oaNonce, oaEncrypt, oaMsgSignature, true},
		{"WeCom sample", weComToken, weComTimestamp, weComNonce, weComEchostr, weComMsgSignature, true},
		{"uppercase hex", oaToken, oaTimestamp, oaNonce, oaEncrypt, strings.ToUpper(oaMsgSignature), false},
		{"other ciphertext", oaToken, oaTimestamp, oaNonce, oaEncrypt[1:], oaMsgSignature, false},
		{"plain signature", oaToken, oaTimestamp, oaNonce, oaEncrypt, Signature(oaToken, oaTimestamp, oaNonce), false},
		{"empty token", "", oaTimestamp, oaNonce, oaEncrypt, MsgSignature("", oaTimestamp, oaNonce, oaEncrypt), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyMsgSignature(tt.token, tt.timestamp, tt.nonce, tt.encrypt, tt.signature); got != tt.want {
				t.Errorf("VerifyMsgSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

// WeChat sorts before hashing, so which argument holds which value must not
// matter; the signature is over the set.
func TestSignatureIgnoresArgumentOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		a, b, c, d := randomASCII(r, 12), randomASCII(r, 12), randomASCII(r, 12), randomASCII(r, 12)
		if Signature(a, b, c) != Signature(c, a, b) || Signature(a, b, c) != Signature(b, c, a) {
			t.Fatalf("Signature depends on argument order for %q %q %q", a, b, c)
		}
		if MsgSignature(a, b, c, d) != MsgSignature(d, c, b, a) {
			t.Fatalf("MsgSignature depends on argument order for %q %q %q %q", a, b, c, d)
		}
		if got := Signature(a, b, c); len(got) != 40 || strings.ToLower(got) != got {
			t.Fatalf("Signature = %q, want 40 lowercase hex digits", got)
		}
	}
}

// randomASCII returns up to max printable ASCII characters, the alphabet of
// timestamps, nonces and tokens.
func randomASCII(r *rand.Rand, max int) string {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(' ' + r.IntN('~'-' '+1))
	}
	return string(b)
}
