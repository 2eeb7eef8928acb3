package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// Message is a decrypted push: its XML and every element under <xml> by
// WeChat's own names, as strings.
type Message struct {
	// Fields holds each top-level element's text; an element with
	// elements of its own (ScanCodeInfo, SendPicsInfo) holds its inner
	// XML.
	Fields map[string]string
	// XML is the plaintext as WeChat sent it.
	XML []byte
	// ID is the message's id: MsgId when it has one, else a digest of
	// FromUserName, CreateTime and Event.
	ID string
	// Authorizer is the appid of the platform's authorizer the message
	// is for; "" for a credential's own.
	Authorizer string
}

// key names the message within its credential: its id, and its
// authorizer's appid, whose users and ids are its own.
func (m Message) key() string {
	if m.Authorizer == "" {
		return m.ID
	}
	return m.Authorizer + "\x00" + m.ID
}

// user names whom the message is from within its credential.
func (m Message) user() string {
	if m.Authorizer == "" {
		return m.User()
	}
	return m.Authorizer + "\x00" + m.User()
}

// source is the credential the destination is told of: the
// credential's id, or an authorizer's, <platform id>/<appid>.
func source(credential, authorizer string) string {
	if authorizer == "" {
		return credential
	}
	return credential + "/" + authorizer
}

// ErrMessage reports a plaintext that is not a WeChat message.
var ErrMessage = errors.New("gateway: not a WeChat message")

type element struct {
	XMLName xml.Name
	Text    string `xml:",chardata"`
	Inner   string `xml:",innerxml"`
}

type document struct {
	XMLName  xml.Name  `xml:"xml"`
	Elements []element `xml:",any"`
}

// Parse reads a decrypted message.
func Parse(plain []byte) (Message, error) {
	var d document
	if err := xml.Unmarshal(plain, &d); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	m := Message{Fields: make(map[string]string, len(d.Elements)), XML: bytes.Clone(plain)}
	for _, e := range d.Elements {
		v := e.Text
		if strings.Contains(e.Inner, "<") && !strings.HasPrefix(strings.TrimSpace(e.Inner), "<![CDATA[") {
			v = strings.TrimSpace(e.Inner)
		}
		m.Fields[e.XMLName.Local] = v
	}
	if m.Fields["MsgType"] == "" && m.Fields["InfoType"] == "" {
		return Message{}, fmt.Errorf("%w: neither MsgType nor InfoType", ErrMessage)
	}
	m.ID = messageID(m.Fields)
	return m, nil
}

// messageID is MsgId when the message has one. Events have none; WeChat's
// documentation says to deduplicate them by FromUserName and CreateTime,
// and Event tells two events of one second apart (InfoType and AppId do
// the same for a platform's events).
func messageID(f map[string]string) string {
	if id := f["MsgId"]; id != "" {
		return id
	}
	if id := f["MsgID"]; id != "" {
		return id
	}
	h := sha256.New()
	for _, k := range []string{"FromUserName", "CreateTime", "Event", "InfoType", "AppId", "AuthorizerAppid", "SuiteId"} {
		h.Write([]byte(f[k]))
		h.Write([]byte{0})
	}
	return "d" + hex.EncodeToString(h.Sum(nil)[:16])
}

// User is whom the message is from: the lane its deliveries are ordered
// in.
func (m Message) User() string {
	if u := m.Fields["FromUserName"]; u != "" {
		return u
	}
	return m.Fields["AuthorizerAppid"]
}
