package wechat

import (
	"strings"
	"testing"
)

// officialTicket is the ticket of WeChat's JS-SDK signature example
// (WECHAT.md §1).
const officialTicket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"

func TestJSSDKSignature(t *testing.T) {
	tests := []struct {
		name, ticket, nonce string
		timestamp           int64
		url, want           string
	}{
		{"official example", officialTicket, "Wm3WZYTPz0wzccnW", 1414587457,
			"http://mp.weixin.qq.com?params=value", "0f9de62fce790f9a083d5c99e95740ceb90c27ed"},
		{"official example, older copies", officialTicket, "Wm3WZYTPz0wzccnW", 1414587457,
			"http://mp.weixin.qq.com", "f4d90daf4b3bca3078ab155816175ba34c443a7b"},
		{"fragment dropped", officialTicket, "Wm3WZYTPz0wzccnW", 1414587457,
			"http://mp.weixin.qq.com?params=value#/page?x=1#y", "0f9de62fce790f9a083d5c99e95740ceb90c27ed"},
		{"empty fragment dropped", officialTicket, "Wm3WZYTPz0wzccnW", 1414587457,
			"http://mp.weixin.qq.com#", "f4d90daf4b3bca3078ab155816175ba34c443a7b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := JSSDKSignature(tt.ticket, tt.nonce, tt.timestamp, tt.url); got != tt.want {
				t.Errorf("JSSDKSignature(..., %q) = %s, want %s", tt.url, got, tt.want)
			}
		})
	}
	// Every input is signed: changing any one changes the signature.
	base := JSSDKSignature(officialTicket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com")
	for _, got := range []string{
		JSSDKSignature(officialTicket+"x", "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com"),
		JSSDKSignature(officialTicket, "Wm3WZYTPz0wzccnX", 1414587457, "http://mp.weixin.qq.com"),
		JSSDKSignature(officialTicket, "Wm3WZYTPz0wzccnW", 1414587458, "http://mp.weixin.qq.com"),
		JSSDKSignature(officialTicket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com/"),
	} {
		if got == base {
			t.Errorf("a changed input gave the same signature %s", got)
		}
	}
}

func TestNewNonce(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		n := NewNonce()
		if len(n) != 16 || strings.Trim(n, nonceAlphabet) != "" {
			t.Fatalf("NewNonce() = %q; want 16 characters of [A-Za-z0-9]", n)
		}
		if seen[n] {
			t.Fatalf("NewNonce() repeated %q", n)
		}
		seen[n] = true
	}
}
