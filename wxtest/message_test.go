package wxtest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
)

// TestPushMessageRetriesSlow: a receiver slower than WeChat's wait gets
// the push again, each attempt freshly signed and sealed; the answer that
// comes in time ends it.
func TestPushMessageRetriesSlow(t *testing.T) {
	const token, key, appid = "tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx0000000000000001"
	c, _ := callback.NewCrypter(token, key, appid)
	var mu sync.Mutex
	var nonces []string
	var plains [][]byte
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body, _ := io.ReadAll(r.Body)
		plain, err := c.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
		if err != nil || q.Get("encrypt_type") != "aes" || !callback.VerifySignature(token, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
			t.Errorf("attempt not sealed as WeChat seals: %v", err)
		}
		mu.Lock()
		nonces = append(nonces, q.Get("nonce"))
		plains = append(plains, plain)
		first := len(nonces) == 1
		mu.Unlock()
		if first {
			select { // slower than the pusher waits
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "success")
	}))
	defer srv.Close()
	defer close(release)
	msg := TextMessage("gh_1", "o_a", "hi", 1, time.Unix(1700000000, 0))
	a, err := PushMessage(t.Context(), MessageTarget{URL: srv.URL, Token: token, EncodingAESKey: key, ReceiveID: appid, Wait: 100 * time.Millisecond}, msg)
	if err != nil || a.Attempts != 2 || a.Status != 200 || string(a.Body) != "success" {
		t.Fatalf("PushMessage = %+v, %v; want 2 attempts ending in 200 success", a, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(nonces) != 2 || nonces[0] == nonces[1] {
		t.Errorf("nonces %v: want a fresh one per attempt", nonces)
	}
	for _, p := range plains {
		if !bytes.Equal(p, msg) {
			t.Errorf("receiver opened %q, want %q", p, msg)
		}
	}
}

func TestOpenReply(t *testing.T) {
	const token, key, appid = "tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx0000000000000001"
	c, _ := callback.NewCrypter(token, key, appid)
	reply := []byte("<xml><Content>hi</Content></xml>")
	env, err := c.EncryptMessage(reply, "1700000000", "42")
	if err != nil {
		t.Fatal(err)
	}
	target := MessageTarget{Token: token, EncodingAESKey: key, ReceiveID: appid}
	if got, err := target.OpenReply(env); err != nil || !bytes.Equal(got, reply) {
		t.Errorf("OpenReply = %q, %v", got, err)
	}
	other := target
	other.Token = "other"
	if _, err := other.OpenReply(env); err == nil {
		t.Error("a reply signed with another token opened")
	}
	if _, err := target.OpenReply([]byte("success")); err == nil {
		t.Error("a plain answer opened as an encrypted reply")
	}
}
