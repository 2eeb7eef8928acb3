package callback

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// replyIn reads back what EncryptMessage writes.
type replyIn struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      string
	MsgSignature string
	TimeStamp    string
	Nonce        string
}

func TestEncryptMessageRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 500 {
		c := newCrypter(t, randomToken(r), randomKey(r), string(randomBytes(r, r.IntN(30))))
		c.Rand = rand.NewChaCha8(seed(r))
		msg := randomBytes(r, randomLength(r))
		timestamp, nonce := randomASCII(r, 12), randomASCII(r, 12)

		body, err := c.EncryptMessage(msg, timestamp, nonce)
		if err != nil {
			t.Fatalf("#%d EncryptMessage: %v", i, err)
		}
		var reply replyIn
		if err := xml.Unmarshal(body, &reply); err != nil {
			t.Fatalf("#%d reply %q does not parse: %v", i, body, err)
		}
		if reply.TimeStamp != timestamp || reply.Nonce != nonce {
			t.Fatalf("#%d reply carries timestamp %q nonce %q, want %q %q", i, reply.TimeStamp, reply.Nonce, timestamp, nonce)
		}
		if !VerifyMsgSignature(c.token, timestamp, nonce, reply.Encrypt, reply.MsgSignature) {
			t.Fatalf("#%d reply's MsgSignature does not verify", i)
		}
		// The reply envelope has an Encrypt element too, so the request
		// path can open it.
		got, err := c.DecryptMessage(reply.MsgSignature, timestamp, nonce, body)
		if err != nil {
			t.Fatalf("#%d DecryptMessage(reply): %v", i, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("#%d round trip = %q, want %q", i, got, msg)
		}
	}
}

func TestEncryptMessageFormat(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	c.Rand = strings.NewReader(javaRandom)
	body, err := c.EncryptMessage([]byte(javaMsg), "1409304348", "xxxxxx")
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := c.encryptWithRandom([]byte(javaRandom), []byte(javaMsg))
	want := "<xml><Encrypt><![CDATA[" + enc + "]]></Encrypt><MsgSignature><![CDATA[" +
		MsgSignature(oaToken, "1409304348", "xxxxxx", enc) + "]]></MsgSignature>" +
		"<TimeStamp>1409304348</TimeStamp><Nonce><![CDATA[xxxxxx]]></Nonce></xml>"
	if string(body) != want {
		t.Errorf("EncryptMessage =\n%s\nwant\n%s", body, want)
	}
}

func TestSealRequestRoundTrip(t *testing.T) {
	recipients := []struct {
		name string
		to   Recipient
		want []string // elements that must appear, in the order WeChat writes them
	}{
		{"component push", Recipient{AppID: "wx0123456789abcdef"}, []string{"<AppId><![CDATA[wx0123456789abcdef]]></AppId>", "<Encrypt>"}},
		{"official account", Recipient{ToUserName: "gh_123"}, []string{"<ToUserName><![CDATA[gh_123]]></ToUserName>", "<Encrypt>"}},
		{"WeCom", Recipient{ToUserName: "ww1", AgentID: "1000002"}, []string{"<ToUserName>", "<AgentID><![CDATA[1000002]]></AgentID>", "<Encrypt>"}},
		{"hostile names", Recipient{ToUserName: "]]><x/>", AppID: "<&>"}, []string{"<ToUserName>", "<AppId>", "<Encrypt>"}},
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, rc := range recipients {
		t.Run(rc.name, func(t *testing.T) {
			for i := range 200 {
				c := newCrypter(t, randomToken(r), randomKey(r), string(randomBytes(r, r.IntN(30))))
				msg := randomBytes(r, randomLength(r))
				timestamp, nonce := randomASCII(r, 12), randomASCII(r, 12)
				body, sig, err := c.SealRequest(rc.to, msg, timestamp, nonce)
				if err != nil {
					t.Fatalf("#%d SealRequest: %v", i, err)
				}
				if !inOrder(string(body), rc.want) {
					t.Fatalf("#%d body %s lacks %q in order", i, body, rc.want)
				}
				got, err := c.DecryptMessage(sig, timestamp, nonce, body)
				if err != nil {
					t.Fatalf("#%d DecryptMessage: %v", i, err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("#%d round trip = %q, want %q", i, got, msg)
				}
			}
		})
	}
}

// TestTamperedRequestIsRejected changes every byte of a sealed request, and
// every character of its signature, timestamp and nonce, one at a time.
// DecryptMessage may fail or, where the change falls outside the signed
// Encrypt value, return the original message; it must never return another.
func TestTamperedRequestIsRejected(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	msg := []byte("<xml><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>ticket@@@abc</ComponentVerifyTicket></xml>")
	body, sig, err := c.SealRequest(Recipient{AppID: oaAppID}, msg, oaTimestamp, oaNonce)
	if err != nil {
		t.Fatal(err)
	}
	encStart := bytes.Index(body, []byte("<Encrypt>"))
	for i := range body {
		for _, delta := range []byte{1, 0x20, 0x80} {
			tampered := bytes.Clone(body)
			tampered[i] ^= delta
			got, err := c.DecryptMessage(sig, oaTimestamp, oaNonce, tampered)
			if err == nil && !bytes.Equal(got, msg) {
				t.Fatalf("byte %d ^ %#x: accepted as %q", i, delta, got)
			}
			if err != nil && !classified(err) {
				t.Fatalf("byte %d ^ %#x: unclassified error %v", i, delta, err)
			}
			if err == nil && i >= encStart {
				t.Fatalf("byte %d ^ %#x, in or after Encrypt, was accepted", i, delta)
			}
		}
	}
	params := [3]string{sig, oaTimestamp, oaNonce}
	for p := range params {
		for i := range len(params[p]) {
			tampered := params
			b := []byte(tampered[p])
			b[i] ^= 1
			tampered[p] = string(b)
			_, err := c.DecryptMessage(tampered[0], tampered[1], tampered[2], body)
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("parameter %d, byte %d changed: error %v, want ErrSignature", p, i, err)
			}
		}
	}
}

// TestCBCMalleabilityIsCaughtBySignature shows why DecryptMessage verifies
// before it decrypts. Flipping bits in the first ciphertext block garbles
// only the ignored random prefix and flips the same bits in the length field
// and message start, so Decrypt alone accepts a forged message.
func TestCBCMalleabilityIsCaughtBySignature(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	msg := []byte("pay 100 to alice, and more text so the message spans blocks")
	enc, err := c.encryptWithRandom([]byte(javaRandom), msg)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(enc)
	// Plaintext bytes 24..26 ("100", after 16 random bytes, the 4-byte
	// length and "pay ") sit in block 1; XOR into block 0 to rewrite them.
	for i, d := range []byte{'1' ^ '9', '0' ^ '9', '0' ^ '9'} {
		raw[24-16+i] ^= d
	}
	forged := base64.StdEncoding.EncodeToString(raw)

	got, err := c.Decrypt(forged)
	if err != nil {
		t.Fatalf("Decrypt(forged): %v; the malleability this test documents is gone", err)
	}
	if want := bytes.Replace(msg, []byte("100"), []byte("999"), 1); !bytes.Equal(got, want) {
		t.Fatalf("Decrypt(forged) = %q, want %q", got, want)
	}

	body := []byte("<xml><AppId>" + oaAppID + "</AppId><Encrypt>" + forged + "</Encrypt></xml>")
	sig := MsgSignature(oaToken, oaTimestamp, oaNonce, enc) // signed for the original
	if got, err := c.DecryptMessage(sig, oaTimestamp, oaNonce, body); !errors.Is(err, ErrSignature) {
		t.Errorf("DecryptMessage(forged) = %q, %v; want ErrSignature", got, err)
	}
}

func TestDecryptMessageRejectsBadInput(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	// signed wraps encrypt in an envelope and signs it properly, so that the
	// failure has to come from what lies behind the signature.
	type request struct {
		sig  string
		body string
	}
	signed := func(encrypt string) request {
		return request{MsgSignature(oaToken, oaTimestamp, oaNonce, encrypt), "<xml><Encrypt><![CDATA[" + encrypt + "]]></Encrypt></xml>"}
	}
	// sealedBy is a request as another configuration would seal it.
	sealedBy := func(token, key, receiveID string) request {
		other := newCrypter(t, token, key, receiveID)
		body, sig, err := other.SealRequest(Recipient{AppID: oaAppID}, []byte("<xml/>"), oaTimestamp, oaNonce)
		if err != nil {
			t.Fatal(err)
		}
		return request{sig, string(body)}
	}
	badPad := make([]byte, 64)
	oversized := oaBody + strings.Repeat(" ", MaxBodySize-len(oaBody)+1)

	tests := []struct {
		name string
		req  request
		want []error
	}{
		{"wrong signature", request{strings.Repeat("0", 40), oaBody}, []error{ErrSignature}},
		{"uppercase signature", request{strings.ToUpper(oaMsgSignature), oaBody}, []error{ErrSignature}},
		{"plain signature", request{Signature(oaToken, oaTimestamp, oaNonce), oaBody}, []error{ErrSignature}},
		{"empty signature", request{"", oaBody}, []error{ErrSignature}},
		{"other token", sealedBy("other", oaKey, oaAppID), []error{ErrSignature}},
		{"wrong key", sealedBy(oaToken, weComKey, oaAppID), []error{ErrPadding, ErrMalformed, ErrReceiveID}},
		{"wrong receive id", sealedBy(oaToken, oaKey, javaAppID), []error{ErrReceiveID}},
		{"signed non-base64", signed("not base64!"), []error{ErrCiphertext}},
		{"signed truncated", signed(oaEncrypt[:len(oaEncrypt)-8]), []error{ErrCiphertext}},
		{"signed bad padding", signed(sealRaw(t, c, badPad)), []error{ErrPadding}},
		{"oversized body", request{oaMsgSignature, oversized}, []error{ErrTooLarge}},
		{"not XML", request{oaMsgSignature, "Encrypt=" + oaEncrypt}, []error{ErrMalformed}},
		{"unclosed", request{oaMsgSignature, strings.TrimSuffix(oaBody, "</xml>")}, []error{ErrMalformed}},
		{"wrong root", request{oaMsgSignature, strings.ReplaceAll(oaBody, "xml>", "msg>")}, []error{ErrMalformed}},
		{"empty body", request{oaMsgSignature, ""}, []error{ErrMalformed}},
		{"missing Encrypt", request{oaMsgSignature, "<xml><ToUserName>toUser</ToUserName></xml>"}, []error{ErrMalformed}},
		{"nested Encrypt", request{oaMsgSignature, "<xml><x><Encrypt>" + oaEncrypt + "</Encrypt></x></xml>"}, []error{ErrMalformed}},
		{"empty Encrypt", request{oaMsgSignature, "<xml><Encrypt></Encrypt></xml>"}, []error{ErrMalformed}},
		{"two Encrypts", request{oaMsgSignature, "<xml><Encrypt>" + oaEncrypt + "</Encrypt><Encrypt>" + oaEncrypt + "</Encrypt></xml>"}, []error{ErrMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.DecryptMessage(tt.req.sig, oaTimestamp, oaNonce, []byte(tt.req.body))
			if err == nil {
				t.Fatalf("DecryptMessage accepted it as %q", got)
			}
			if !isAny(err, tt.want) {
				t.Errorf("DecryptMessage error %v, want one of %v", err, tt.want)
			}
		})
	}
}

func TestDecryptMessageAcceptsBodyAtLimit(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	body := oaBody + strings.Repeat(" ", MaxBodySize-len(oaBody))
	plain, err := c.DecryptMessage(oaMsgSignature, oaTimestamp, oaNonce, []byte(body))
	if err != nil {
		t.Fatalf("DecryptMessage of a %d-byte body: %v", len(body), err)
	}
	checkOAPlaintext(t, plain)
}

func TestVerifyURLRejectsBadInput(t *testing.T) {
	c := newCrypter(t, weComToken, weComKey, weComReceiveID)
	other := newCrypter(t, weComToken, weComKey, "ww_other")
	foreign, err := other.Encrypt([]byte(weComEcho))
	if err != nil {
		t.Fatal(err)
	}
	// A recorded push's ciphertext, replayed as echostr with the push's
	// own signature: answering it would hand out the push's plaintext.
	push, err := c.Encrypt([]byte("<xml><SuiteId><![CDATA[ww1]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType><SuiteTicket><![CDATA[t]]></SuiteTicket></xml>"))
	if err != nil {
		t.Fatal(err)
	}
	jsonPush, err := c.Encrypt([]byte(`{"ToUserName":"ww1","MsgType":"text","Content":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sig, echostr string
		want               error
	}{
		{"wrong signature", oaMsgSignature, weComEchostr, ErrSignature},
		{"URL-encoded echostr", weComMsgSignature, strings.ReplaceAll(weComEchostr, "+", "%2B"), ErrSignature},
		{"other corp", MsgSignature(weComToken, weComTimestamp, weComNonce, foreign), foreign, ErrReceiveID},
		{"a push's ciphertext", MsgSignature(weComToken, weComTimestamp, weComNonce, push), push, ErrMalformed},
		{"a JSON message's ciphertext", MsgSignature(weComToken, weComTimestamp, weComNonce, jsonPush), jsonPush, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.VerifyURL(tt.sig, weComTimestamp, weComNonce, tt.echostr)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("VerifyURL = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestVerifyURLAnyReceiver: an echostr sealed for another receive id (a
// suite's verification, sealed for the provider's corpid) is answered; a
// wrong signature and a message's ciphertext are still refused.
func TestVerifyURLAnyReceiver(t *testing.T) {
	suite := newCrypter(t, weComToken, weComKey, "ww_suite")
	provider := newCrypter(t, weComToken, weComKey, "ww_provider")
	echostr, err := provider.Encrypt([]byte(weComEcho))
	if err != nil {
		t.Fatal(err)
	}
	sig := MsgSignature(weComToken, weComTimestamp, weComNonce, echostr)
	if _, err := suite.VerifyURL(sig, weComTimestamp, weComNonce, echostr); !errors.Is(err, ErrReceiveID) {
		t.Fatalf("VerifyURL of an echostr sealed for another receive id: %v, want ErrReceiveID", err)
	}
	got, err := suite.VerifyURLAnyReceiver(sig, weComTimestamp, weComNonce, echostr)
	if err != nil || string(got) != weComEcho {
		t.Fatalf("VerifyURLAnyReceiver = %q, %v; want %q", got, err, weComEcho)
	}
	if got, err := suite.VerifyURLAnyReceiver(oaMsgSignature, weComTimestamp, weComNonce, echostr); !errors.Is(err, ErrSignature) || got != nil {
		t.Errorf("VerifyURLAnyReceiver with a wrong signature = %q, %v; want ErrSignature", got, err)
	}
	push, err := provider.Encrypt([]byte("<xml><InfoType><![CDATA[suite_ticket]]></InfoType></xml>"))
	if err != nil {
		t.Fatal(err)
	}
	sig = MsgSignature(weComToken, weComTimestamp, weComNonce, push)
	if got, err := suite.VerifyURLAnyReceiver(sig, weComTimestamp, weComNonce, push); !errors.Is(err, ErrMalformed) || got != nil {
		t.Errorf("VerifyURLAnyReceiver of a push's ciphertext = %q, %v; want ErrMalformed", got, err)
	}
}

// Values that XML cannot carry unchanged must be refused, not written into
// an envelope that WeChat, or DecryptMessage, would fail to parse or verify.
func TestSealingRejectsUnrepresentableText(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	for _, bad := range []string{"12\r", "\x00", "a\x1fb", "\xff", "\uFFFE"} {
		if _, err := c.EncryptMessage([]byte("m"), bad, oaNonce); !errors.Is(err, ErrMalformed) {
			t.Errorf("EncryptMessage with timestamp %q: %v, want ErrMalformed", bad, err)
		}
		if _, err := c.EncryptMessage([]byte("m"), oaTimestamp, bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("EncryptMessage with nonce %q: %v, want ErrMalformed", bad, err)
		}
		for _, to := range []Recipient{{ToUserName: bad}, {AppID: bad}, {AgentID: bad}} {
			if _, _, err := c.SealRequest(to, []byte("m"), oaTimestamp, oaNonce); !errors.Is(err, ErrMalformed) {
				t.Errorf("SealRequest to %+v: %v, want ErrMalformed", to, err)
			}
		}
	}
	// Markup characters and non-ASCII text are fine: CDATA carries them.
	if _, err := c.EncryptMessage([]byte("m"), "1409304348", "<&]]>中文"); err != nil {
		t.Errorf("EncryptMessage with a markup-laden nonce: %v", err)
	}
}

// inOrder reports whether s contains each of parts, in order.
func inOrder(s string, parts []string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// randomToken returns a non-empty printable token.
func randomToken(r *rand.Rand) string {
	return "t" + randomASCII(r, 31)
}
