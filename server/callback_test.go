package server

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

const (
	compAppID = "wxcomponent0001"
	compToken = "platform-token"
	compKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	otherKey  = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"
)

type cbEnv struct {
	srv   *httptest.Server
	store store.Store
	seal  *callback.Crypter
}

// newCallbackEnv serves, with the given timestamp window, a platform "plat" and the two callback vectors of
// WECHAT.md: an mp endpoint with token AAAAA and a WeCom one.
func newCallbackEnv(t *testing.T, skew time.Duration) *cbEnv {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memory.New()
	fake := wxtest.New(wxtest.Config{})
	up := &wechat.Client{HTTP: fake.Client(), API: "http://wechat"}
	p := component.New(component.Config{ID: "plat", AppID: compAppID, Secret: "s"}, up, st, quiet)
	m, err := token.New(token.Config{Store: st, Logger: quiet}, []token.Credential{p.Credential()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := p.Start(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	compCrypter, _ := callback.NewCrypter(compToken, compKey, compAppID)
	wecomCrypter, _ := callback.NewCrypter("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
	api, err := New(Config{Tokens: m, Logger: quiet, MaxSkew: skew, CallbackModes: testModes, Callbacks: []Callback{
		{Kind: "component", ID: "plat", Token: compToken, Crypter: compCrypter, Handler: p},
		{Kind: "mp", ID: "oa", Token: "AAAAA"},
		{Kind: "wecom", ID: "hr", Token: "QDG6eK", Crypter: wecomCrypter},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	seal, _ := callback.NewCrypter(compToken, compKey, compAppID)
	return &cbEnv{srv: srv, store: st, seal: seal}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestVerifyURL answers WeChat's server URL verification with the
// protocol reference's vectors (the window is wide so old vectors pass).
func TestVerifyURL(t *testing.T) {
	e := newCallbackEnv(t, 100*365*24*time.Hour) // the vectors are years old
	mp := e.srv.URL + "/callback/mp/oa?timestamp=1714037059&nonce=486452656&echostr=hello&signature="
	if code, body := get(t, mp+"899cf89e464efb63f54ddac96b0a0a235f53aa78"); code != 200 || body != "hello" {
		t.Fatalf("mp verification = %d %q, want 200 hello", code, body)
	}
	if code, body := get(t, mp+"899cf89e464efb63f54ddac96b0a0a235f53aa79"); code != 401 || strings.Contains(body, "hello") {
		t.Fatalf("mp bad signature = %d %q, want 401 without the echo", code, body)
	}
	q := url.Values{"msg_signature": {"5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"}, "timestamp": {"1409659589"},
		"nonce": {"263014780"}, "echostr": {"P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}}
	if code, body := get(t, e.srv.URL+"/callback/wecom/hr?"+q.Encode()); code != 200 || body != "1616140317555161061" {
		t.Fatalf("wecom verification = %d %q, want 200 1616140317555161061", code, body)
	}
	q.Set("msg_signature", "0c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3")
	if code, _ := get(t, e.srv.URL+"/callback/wecom/hr?"+q.Encode()); code != 401 {
		t.Fatalf("wecom bad signature = %d, want 401", code)
	}
	if code, _ := get(t, e.srv.URL+"/callback/mp/nope?timestamp=1714037059&nonce=1&echostr=x&signature=x"); code != 404 {
		t.Fatalf("unknown id = %d, want 404", code)
	}
}

// TestVerifyURLAnyReceiver: a mode whose echostr may be sealed for another
// receive id (a WeCom suite's, for the provider's corpid) answers it; the
// wecom mode still refuses an echostr sealed for another corp.
func TestVerifyURLAnyReceiver(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := token.New(token.Config{Store: memory.New(), Logger: quiet}, nil)
	if err != nil {
		t.Fatal(err)
	}
	suiteCrypter, _ := callback.NewCrypter(compToken, compKey, "ww_suite")
	corpCrypter, _ := callback.NewCrypter(compToken, compKey, "ww_corp")
	api, err := New(Config{Tokens: m, Logger: quiet,
		CallbackModes: []CallbackMode{{Kind: "suite", Verify: true, Encrypted: true, VerifyAnyReceiver: true}, testModes[1]},
		Callbacks: []Callback{
			{Kind: "suite", ID: "s", Token: compToken, Crypter: suiteCrypter},
			{Kind: "wecom", ID: "hr", Token: compToken, Crypter: corpCrypter},
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	provider, _ := callback.NewCrypter(compToken, compKey, "ww_provider")
	echostr, _ := provider.Encrypt([]byte("5927782489442352469"))
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "1"
	q := url.Values{"msg_signature": {callback.MsgSignature(compToken, ts, nonce, echostr)}, "timestamp": {ts},
		"nonce": {nonce}, "echostr": {echostr}}
	if code, body := get(t, srv.URL+"/callback/suite/s?"+q.Encode()); code != 200 || body != "5927782489442352469" {
		t.Errorf("suite verification sealed for the provider = %d %q, want 200 and the echo", code, body)
	}
	if code, body := get(t, srv.URL+"/callback/wecom/hr?"+q.Encode()); code != 400 || !strings.Contains(body, "receive id") {
		t.Errorf("wecom verification sealed for another corp = %d %q, want 400", code, body)
	}
}

// push is one request as WeChat would send it.
type push struct {
	ts, nonce, sig string
	body           []byte
}

func (e *cbEnv) sealed(t *testing.T, c *callback.Crypter, plain string, ts time.Time, nonce string) push {
	t.Helper()
	p := push{ts: strconv.FormatInt(ts.Unix(), 10), nonce: nonce}
	var err error
	p.body, p.sig, err = c.SealRequest(callback.Recipient{AppID: compAppID}, []byte(plain), p.ts, p.nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *cbEnv) send(t *testing.T, path string, p push) (int, string) {
	t.Helper()
	q := url.Values{"timestamp": {p.ts}, "nonce": {p.nonce}, "msg_signature": {p.sig}, "encrypt_type": {"aes"}}
	resp, err := http.Post(e.srv.URL+path+"?"+q.Encode(), "text/xml", bytes.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ticketXML(ticket string, created time.Time) string {
	return fmt.Sprintf("<xml><AppId>%s</AppId><CreateTime>%d</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>%s</ComponentVerifyTicket></xml>",
		compAppID, created.Unix(), ticket)
}

func (e *cbEnv) storedTicket(t *testing.T) string {
	t.Helper()
	ent, err := e.store.Get(t.Context(), "ticket/plat")
	if err != nil {
		return ""
	}
	return string(ent.Value)
}

// rawEncrypt builds an Encrypt value from a plaintext frame with a chosen
// padding, to reach the checks a well-formed sealer never trips.
func rawEncrypt(t *testing.T, key string, frame []byte, pad byte, padLen int) string {
	k, _ := base64.StdEncoding.DecodeString(key + "=")
	b := append([]byte{}, frame...)
	for range padLen {
		b = append(b, pad)
	}
	block, _ := aes.NewCipher(k)
	out := make([]byte, len(b))
	cipher.NewCBCEncrypter(block, k[:16]).CryptBlocks(out, b)
	return base64.StdEncoding.EncodeToString(out)
}

func frame(msg, receiveID string) []byte {
	b := make([]byte, 20, 20+len(msg)+len(receiveID))
	binary.BigEndian.PutUint32(b[16:], uint32(len(msg)))
	return append(append(b, msg...), receiveID...)
}

// envelope wraps an Encrypt value and signs it with the platform token.
func envelope(encrypt string, ts time.Time, nonce string) push {
	p := push{ts: strconv.FormatInt(ts.Unix(), 10), nonce: nonce}
	p.body = []byte("<xml><AppId><![CDATA[" + compAppID + "]]></AppId><Encrypt><![CDATA[" + encrypt + "]]></Encrypt></xml>")
	p.sig = callback.MsgSignature(compToken, p.ts, nonce, encrypt)
	return p
}

func TestComponentPushMatrix(t *testing.T) {
	e := newCallbackEnv(t, 5*time.Minute)
	now := time.Now()
	good := e.sealed(t, e.seal, ticketXML("ticket-1", now), now, "n-good")
	if code, body := e.send(t, "/callback/component/plat", good); code != 200 || body != "success" {
		t.Fatalf("good push = %d %q, want 200 success", code, body)
	}
	stored := e.storedTicket(t)
	if !strings.Contains(stored, "ticket-1") {
		t.Fatalf("stored ticket = %q, want ticket-1", stored)
	}

	wrongReceiver, _ := callback.NewCrypter(compToken, compKey, "wxsomeoneelse")
	wrongKey, _ := callback.NewCrypter(compToken, otherKey, compAppID)
	wrongToken, _ := callback.NewCrypter("not-the-token", compKey, compAppID)
	plain := ticketXML("ticket-evil", now.Add(time.Minute))
	goodFrame := frame(plain, compAppID)
	padLen := 32 - len(goodFrame)%32
	tamperSig := e.sealed(t, e.seal, plain, now, "n-sig")
	tamperSig.sig = strings.Repeat("0", 40)
	validEnc := rawEncrypt(t, compKey, goodFrame, byte(padLen), padLen)

	tests := []struct {
		name   string
		path   string
		p      push
		status int
		code   string
	}{
		{"wrong signature", "/callback/component/plat", tamperSig, 401, "bad_signature"},
		{"wrong token", "/callback/component/plat", e.sealed(t, wrongToken, plain, now, "n1"), 401, "bad_signature"},
		{"stale timestamp", "/callback/component/plat", e.sealed(t, e.seal, plain, now.Add(-10*time.Minute), "n2"), 400, "stale_timestamp"},
		{"future timestamp", "/callback/component/plat", e.sealed(t, e.seal, plain, now.Add(10*time.Minute), "n3"), 400, "stale_timestamp"},
		{"replayed nonce", "/callback/component/plat", good, 409, "replayed"},
		{"wrong receiveid", "/callback/component/plat", e.sealed(t, wrongReceiver, plain, now, "n4"), 400, "bad_message"},
		{"wrong key", "/callback/component/plat", e.sealed(t, wrongKey, plain, now, "n5"), 400, "bad_message"},
		{"truncated ciphertext", "/callback/component/plat", envelope(validEnc[:len(validEnc)-8], now, "n6"), 400, "bad_message"},
		{"not base64", "/callback/component/plat", envelope("!!!not-base64!!!", now, "n7"), 400, "bad_message"},
		{"padding zero", "/callback/component/plat", envelope(rawEncrypt(t, compKey, append(goodFrame, make([]byte, padLen-1)...), 0, 1), now, "n8"), 400, "bad_message"},
		{"padding 33", "/callback/component/plat", envelope(rawEncrypt(t, compKey, goodFrame[:len(goodFrame)-1], 33, padLen+1), now, "n9"), 400, "bad_message"},
		{"padding inconsistent", "/callback/component/plat", envelope(rawEncrypt(t, compKey, append(goodFrame, byte(1)), byte(padLen-1), padLen-1), now, "n10"), 400, "bad_message"},
		{"malformed xml", "/callback/component/plat", push{ts: good.ts, nonce: "n11", sig: good.sig, body: []byte("<xml><Encrypt>")}, 400, "bad_message"},
		{"oversized", "/callback/component/plat", push{ts: good.ts, nonce: "n12", sig: good.sig, body: bytes.Repeat([]byte("x"), callback.MaxBodySize+1)}, 413, "too_large"},
		{"bad inner xml", "/callback/component/plat", e.sealed(t, e.seal, "<xml><InfoType>", now, "n13"), 400, "bad_message"},
		{"ticket without ticket", "/callback/component/plat", e.sealed(t, e.seal, "<xml><AppId>"+compAppID+"</AppId><InfoType>component_verify_ticket</InfoType></xml>", now, "n14"), 400, "bad_message"},
		{"unknown component", "/callback/component/nope", e.sealed(t, e.seal, plain, now, "n15"), 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.send(t, tt.path, tt.p)
			if code != tt.status || !strings.Contains(body, `"code":"`+tt.code+`"`) {
				t.Fatalf("= %d %s; want %d %s", code, body, tt.status, tt.code)
			}
			if got := e.storedTicket(t); got != stored {
				t.Fatalf("a refused push changed the stored ticket: %s", got)
			}
		})
	}

	// A valid push of an unknown InfoType is acknowledged and stores nothing.
	other := e.sealed(t, e.seal, "<xml><AppId>"+compAppID+"</AppId><InfoType>notify_third_fasteregister</InfoType></xml>", now, "n16")
	if code, body := e.send(t, "/callback/component/plat", other); code != 200 || body != "success" {
		t.Fatalf("unknown InfoType = %d %q, want 200 success", code, body)
	}
	// An older ticket (replayed with a fresh nonce) does not replace a newer.
	older := e.sealed(t, e.seal, ticketXML("ticket-0", now.Add(-time.Hour)), now, "n17")
	if code, _ := e.send(t, "/callback/component/plat", older); code != 200 {
		t.Fatalf("older ticket push = %d, want 200", code)
	}
	if got := e.storedTicket(t); got != stored {
		t.Fatalf("an older ticket replaced the newer: %s", got)
	}
}
