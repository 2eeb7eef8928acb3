package callback

import (
	"encoding/xml"
	"errors"
	"testing"
)

// Tencent's published samples, as listed in WECHAT.md section 5.
const (
	plainToken     = "AAAAA"
	plainTimestamp = "1714037059"
	plainNonce     = "486452656"
	plainSignature = "899cf89e464efb63f54ddac96b0a0a235f53aa78"

	oaToken        = "spamtest"
	oaKey          = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	oaAppID        = "wx2c2769f8efd9abc2"
	oaTimestamp    = "1409735669"
	oaNonce        = "1320562132"
	oaMsgSignature = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
	oaEncrypt      = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="

	// Tencent's Java test encrypts with the OA sample key for another appid.
	javaAppID   = "wxb11529c136998cb6"
	javaRandom  = "aaaabbbbccccdddd"
	javaMsg     = "我是中文abcd123"
	javaEncrypt = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="

	weComToken        = "QDG6eK"
	weComKey          = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	weComReceiveID    = "wx5823bf96d3bd56c7"
	weComMsgSignature = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	weComTimestamp    = "1409659589"
	weComNonce        = "263014780"
	weComEchostr      = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	weComEcho         = "1616140317555161061"
)

// oaBody is the OA sample's request envelope as WeChat posts it.
const oaBody = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[" + oaEncrypt + "]]></Encrypt></xml>"

// sentinels lists every sentinel error; each failure must wrap one of them.
var sentinels = []error{
	ErrSignature,
	ErrKey,
	ErrCiphertext,
	ErrPadding,
	ErrMalformed,
	ErrReceiveID,
	ErrTooLarge,
}

// classified reports whether err wraps one of the sentinel errors.
func classified(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// newCrypter is NewCrypter for arguments a test knows to be valid.
func newCrypter(t testing.TB, token, key, receiveID string) *Crypter {
	t.Helper()
	c, err := NewCrypter(token, key, receiveID)
	if err != nil {
		t.Fatalf("NewCrypter: %v", err)
	}
	return c
}

// textMessage is the part of an Official Account text message the OA sample
// is checked against.
type textMessage struct {
	Content string
	MsgID   string `xml:"MsgId"`
}

func checkOAPlaintext(t *testing.T, plain []byte) {
	t.Helper()
	var m textMessage
	if err := xml.Unmarshal(plain, &m); err != nil {
		t.Fatalf("plaintext %q does not parse: %v", plain, err)
	}
	if m.Content != "abcdteT" || m.MsgID != "6054768590064713728" {
		t.Errorf("got Content %q, MsgId %q; want %q, %q", m.Content, m.MsgID, "abcdteT", "6054768590064713728")
	}
}

func TestVectorPlainSignature(t *testing.T) {
	if got := Signature(plainToken, plainTimestamp, plainNonce); got != plainSignature {
		t.Errorf("Signature = %s, want %s", got, plainSignature)
	}
	if !VerifySignature(plainToken, plainTimestamp, plainNonce, plainSignature) {
		t.Error("VerifySignature rejected the sample signature")
	}
}

func TestVectorOAMessage(t *testing.T) {
	if got := MsgSignature(oaToken, oaTimestamp, oaNonce, oaEncrypt); got != oaMsgSignature {
		t.Errorf("MsgSignature = %s, want %s", got, oaMsgSignature)
	}
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	plain, err := c.Decrypt(oaEncrypt)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	checkOAPlaintext(t, plain)

	plain, err = c.DecryptMessage(oaMsgSignature, oaTimestamp, oaNonce, []byte(oaBody))
	if err != nil {
		t.Fatalf("DecryptMessage: %v", err)
	}
	checkOAPlaintext(t, plain)
}

func TestVectorJavaEncryption(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, javaAppID)
	got, err := c.encryptWithRandom([]byte(javaRandom), []byte(javaMsg))
	if err != nil {
		t.Fatalf("encryptWithRandom: %v", err)
	}
	if got != javaEncrypt {
		t.Errorf("encryptWithRandom = %s\nwant %s", got, javaEncrypt)
	}
	plain, err := c.Decrypt(javaEncrypt)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(plain) != javaMsg {
		t.Errorf("Decrypt = %q, want %q", plain, javaMsg)
	}
}

func TestVectorWeComVerifyURL(t *testing.T) {
	if got := MsgSignature(weComToken, weComTimestamp, weComNonce, weComEchostr); got != weComMsgSignature {
		t.Errorf("MsgSignature = %s, want %s", got, weComMsgSignature)
	}
	c := newCrypter(t, weComToken, weComKey, weComReceiveID)
	got, err := c.VerifyURL(weComMsgSignature, weComTimestamp, weComNonce, weComEchostr)
	if err != nil {
		t.Fatalf("VerifyURL: %v", err)
	}
	if string(got) != weComEcho {
		t.Errorf("VerifyURL = %q, want %q", got, weComEcho)
	}
}
