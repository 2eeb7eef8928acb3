package callback

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"unicode/utf8"
)

// MaxBodySize is the largest request body DecryptMessage accepts: 64 KiB.
//
// WeChat's pushes (tickets, authorization events, WeCom suite events, user
// messages) run from a few hundred bytes to a few KiB. The envelope has to be
// parsed before its signature can be checked, so the cap bounds the work an
// unauthenticated sender can cause. Handlers should read bodies through
// http.MaxBytesReader with this limit so that an oversized body is never
// buffered in the first place.
const MaxBodySize = 64 << 10

// Recipient holds the plaintext addressing fields WeChat writes beside
// Encrypt in a request envelope. The signature does not cover them, so a
// receiver must not trust them; DecryptMessage ignores them and relies on the
// receive id sealed inside the ciphertext instead. SealRequest writes the
// fields that are set, so that a fake WeChat's pushes look like real ones.
type Recipient struct {
	// ToUserName addresses Official Account and WeCom messages: the
	// account's original id, or the corpid.
	ToUserName string

	// AppID addresses Open Platform component pushes, such as
	// component_verify_ticket and authorization events: the component appid.
	AppID string

	// AgentID is the WeCom application the message is for.
	AgentID string
}

// cdata marshals its text as a CDATA section, the way WeChat writes string
// fields. encoding/xml splits any "]]>" in the text but copies control
// characters and invalid UTF-8 as they are, so text from callers passes
// checkXMLText first.
type cdata struct {
	Text string `xml:",cdata"`
}

// optionalCDATA returns nil for an empty string so that omitempty drops the
// element.
func optionalCDATA(s string) *cdata {
	if s == "" {
		return nil
	}
	return &cdata{s}
}

// checkXMLText rejects a value that XML cannot carry verbatim: invalid
// UTF-8, the code points XML forbids, and the C0 controls, among which a
// carriage return would come back as a newline and break the signature.
// WeChat's timestamps, nonces and ids are plain ASCII.
func checkXMLText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0xFFFE || r == 0xFFFF {
			return fmt.Errorf("%w: %s contains %U, which XML cannot carry", ErrMalformed, field, r)
		}
	}
	return nil
}

// requestIn is the part of a request envelope that DecryptMessage reads.
// Encrypt is a slice so that a body with two Encrypt elements is rejected
// rather than silently resolved to one of them.
type requestIn struct {
	XMLName xml.Name `xml:"xml"`
	Encrypt []string `xml:"Encrypt"`
}

// requestOut is a request envelope as WeChat sends it.
type requestOut struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName *cdata   `xml:"ToUserName,omitempty"`
	AppID      *cdata   `xml:"AppId,omitempty"`
	AgentID    *cdata   `xml:"AgentID,omitempty"`
	Encrypt    cdata    `xml:"Encrypt"`
}

// replyOut is the envelope of an encrypted passive reply.
type replyOut struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      cdata    `xml:"Encrypt"`
	MsgSignature cdata    `xml:"MsgSignature"`
	TimeStamp    string   `xml:"TimeStamp"`
	Nonce        cdata    `xml:"Nonce"`
}

// DecryptMessage opens an encrypted callback request and returns the
// plaintext XML inside it. The msgSignature, timestamp and nonce are the
// request's msg_signature, timestamp and nonce query parameters; body is the
// request body, an envelope such as
//
//	<xml><AppId><![CDATA[..]]></AppId><Encrypt><![CDATA[..]]></Encrypt></xml>
//
// with ToUserName in place of AppId for Official Accounts and WeCom, and
// possibly an AgentID.
//
// It refuses a body over MaxBodySize before parsing it, then verifies the
// signature over the Encrypt value in constant time, and only then decrypts.
// Errors wrap ErrTooLarge, ErrMalformed, ErrSignature, or one of Decrypt's.
func (c *Crypter) DecryptMessage(msgSignature, timestamp, nonce string, body []byte) ([]byte, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%w: body is %d bytes, limit %d", ErrTooLarge, len(body), MaxBodySize)
	}
	// encoding/xml resolves no external entities and expands no custom
	// ones, so parsing an unauthenticated body is safe at this size.
	var env requestIn
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: request envelope: %v", ErrMalformed, err)
	}
	switch len(env.Encrypt) {
	case 0:
		return nil, fmt.Errorf("%w: request envelope has no Encrypt element", ErrMalformed)
	case 1:
	default:
		return nil, fmt.Errorf("%w: request envelope has %d Encrypt elements", ErrMalformed, len(env.Encrypt))
	}
	encrypt := env.Encrypt[0]
	if encrypt == "" {
		return nil, fmt.Errorf("%w: request envelope has an empty Encrypt element", ErrMalformed)
	}
	if !VerifyMsgSignature(c.token, timestamp, nonce, encrypt, msgSignature) {
		return nil, fmt.Errorf("%w: msg_signature does not match the Encrypt element", ErrSignature)
	}
	return c.Decrypt(encrypt)
}

// VerifyURL answers WeCom's URL verification, a GET carrying msg_signature,
// timestamp, nonce and an encrypted echostr. It verifies the signature over
// echostr and returns the decrypted plaintext, which the handler must write
// back as the whole response body, within one second.
//
// The echostr must be the URL-decoded query value, as url.Values.Get returns
// it; the signature covers the decoded form.
//
// A push is signed exactly as a verification is, msg_signature over token,
// timestamp, nonce and the Encrypt value, so a push's ciphertext sent as
// echostr with the push's own query would pass the signature check: the
// verification would then answer the plaintext of a recorded push (a ticket,
// an auth code, a user's message) to whoever replays it. WeCom's echostr is a
// random string it makes up (digits, in every sample), and every push it
// sends is an XML document, so an echostr whose plaintext holds XML or JSON
// markup is refused with ErrMalformed, and nothing of it is answered.
func (c *Crypter) VerifyURL(msgSignature, timestamp, nonce, echostr string) ([]byte, error) {
	return c.verifyURL(msgSignature, timestamp, nonce, echostr, true)
}

// VerifyURLAnyReceiver is VerifyURL without the receive id check, for a
// verification whose echostr is sealed for an id the configuration does
// not hold: WeCom seals the echostr of a suite's command callback for the
// provider's corpid, while the suite's pushes are sealed for the suite id.
// The signature still proves that the sender knows the token, and an echo
// string is for no one: answering it tells the sender nothing it did not
// seal itself, since a message's plaintext is refused as by VerifyURL.
func (c *Crypter) VerifyURLAnyReceiver(msgSignature, timestamp, nonce, echostr string) ([]byte, error) {
	return c.verifyURL(msgSignature, timestamp, nonce, echostr, false)
}

func (c *Crypter) verifyURL(msgSignature, timestamp, nonce, echostr string, checkReceiver bool) ([]byte, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if !VerifyMsgSignature(c.token, timestamp, nonce, echostr, msgSignature) {
		return nil, fmt.Errorf("%w: msg_signature does not match echostr", ErrSignature)
	}
	plain, receiveID, err := c.open(echostr)
	if err != nil {
		return nil, err
	}
	if checkReceiver && string(receiveID) != c.receiveID {
		return nil, fmt.Errorf("%w: sealed for %.64q, not %q", ErrReceiveID, receiveID, c.receiveID)
	}
	if bytes.ContainsAny(plain, "<{") {
		return nil, fmt.Errorf("%w: echostr decrypts to a message, not an echo string: a push's ciphertext is not answered", ErrMalformed)
	}
	return plain, nil
}

// EncryptMessage seals msg, a plaintext reply such as a passive text
// message, into the reply envelope WeChat expects from a safe-mode server:
//
//	<xml><Encrypt>..</Encrypt><MsgSignature>..</MsgSignature><TimeStamp>..</TimeStamp><Nonce>..</Nonce></xml>
//
// The timestamp and nonce are usually the request's own. A push that wants
// only an acknowledgement is answered with the plain string "success"
// instead, never with this envelope.
//
// Errors wrap ErrMalformed if timestamp or nonce holds characters that XML
// cannot carry unchanged, such as control characters.
func (c *Crypter) EncryptMessage(msg []byte, timestamp, nonce string) ([]byte, error) {
	if err := checkXMLText("timestamp", timestamp); err != nil {
		return nil, err
	}
	if err := checkXMLText("nonce", nonce); err != nil {
		return nil, err
	}
	encrypt, err := c.Encrypt(msg)
	if err != nil {
		return nil, err
	}
	body, err := xml.Marshal(replyOut{
		Encrypt:      cdata{encrypt},
		MsgSignature: cdata{MsgSignature(c.token, timestamp, nonce, encrypt)},
		TimeStamp:    timestamp,
		Nonce:        cdata{nonce},
	})
	if err != nil {
		return nil, fmt.Errorf("callback: marshaling reply envelope: %w", err)
	}
	return body, nil
}

// SealRequest builds an encrypted callback request the way WeChat sends one:
// it seals msg, wraps it in a request envelope addressed to to, and returns
// the body together with the msg_signature to put in the URL beside timestamp
// and nonce. It exists for a fake WeChat that pushes tickets and events in
// tests and demos; DecryptMessage is its inverse.
//
// Errors wrap ErrMalformed if a Recipient field holds characters that XML
// cannot carry unchanged, such as control characters.
func (c *Crypter) SealRequest(to Recipient, msg []byte, timestamp, nonce string) (body []byte, msgSignature string, err error) {
	for _, f := range [...]struct{ name, value string }{
		{"ToUserName", to.ToUserName}, {"AppID", to.AppID}, {"AgentID", to.AgentID},
	} {
		if err := checkXMLText(f.name, f.value); err != nil {
			return nil, "", err
		}
	}
	encrypt, err := c.Encrypt(msg)
	if err != nil {
		return nil, "", err
	}
	body, err = xml.Marshal(requestOut{
		ToUserName: optionalCDATA(to.ToUserName),
		AppID:      optionalCDATA(to.AppID),
		AgentID:    optionalCDATA(to.AgentID),
		Encrypt:    cdata{encrypt},
	})
	if err != nil {
		return nil, "", fmt.Errorf("callback: marshaling request envelope: %w", err)
	}
	return body, MsgSignature(c.token, timestamp, nonce, encrypt), nil
}
