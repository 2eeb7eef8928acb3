package wxtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wxtoken/wxtoken/callback"
)

// MessageTarget is an Official Account's or WeCom application's server
// URL, as configured at WeChat: where PushMessage sends messages and
// events the way WeChat does.
type MessageTarget struct {
	// URL is the server URL (wxtoken's /callback/{kind}/{id}).
	URL string
	// Token is the message token.
	Token string
	// EncodingAESKey, when set, seals every push: safe mode for an
	// Official Account, always for WeCom. Empty: plain mode.
	EncodingAESKey string
	// ReceiveID is what pushes are sealed for: the appid, or the corpid.
	ReceiveID string
	// WeCom: the envelope carries AgentID and the query no
	// encrypt_type, as WeCom sends them.
	WeCom   bool
	AgentID string
	// Client sends the pushes; nil means http.DefaultClient.
	Client *http.Client
	// Wait is how long WeChat waits for an answer before it gives up on
	// an attempt: 5 seconds unless set.
	Wait time.Duration
	// Retries is how many times a push that got no answer is sent again:
	// WeChat retries 3 times. Negative: none.
	Retries int
	// Now is WeChat's clock (default time.Now).
	Now func() time.Time
}

// PushAnswer is how a pushed message ended.
type PushAnswer struct {
	// Attempts counts the requests sent.
	Attempts int
	// Status and Body are the last answer's; Status 0 if none came.
	Status int
	Body   []byte
	// Timestamp and Nonce are those of the last attempt, which a reply
	// in safe mode is signed over.
	Timestamp, Nonce string
}

// PushMessage sends plain, a message's XML, to t the way WeChat does: signed,
// sealed when t has an EncodingAESKey, with a fresh timestamp and nonce on
// every attempt, and sent again, up to t.Retries times, while the answer
// does not come within t.Wait or is not a 200. It returns the last answer;
// err reports only a push that could not be built, or no answer at all.
func PushMessage(ctx context.Context, t MessageTarget, plain []byte) (PushAnswer, error) {
	var a PushAnswer
	retries := t.Retries
	if retries == 0 {
		retries = 3
	}
	var last error
	for a.Attempts = 1; a.Attempts <= retries+1; a.Attempts++ {
		req, ts, nonce, err := t.build(ctx, plain)
		if err != nil {
			return a, err
		}
		a.Timestamp, a.Nonce = ts, nonce
		a.Status, a.Body, last = t.send(req)
		if last == nil && a.Status == http.StatusOK {
			return a, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	a.Attempts--
	if a.Status == 0 {
		return a, last
	}
	return a, nil
}

func (t MessageTarget) send(req *http.Request) (int, []byte, error) {
	wait := t.Wait
	if wait <= 0 {
		wait = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(req.Context(), wait)
	defer cancel()
	client := t.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, fmt.Errorf("wxtest: push: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("wxtest: reading push answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// Request builds one push of plain as WeChat sends it, for a test that
// sends it itself: twice, say, as a replay would.
func (t MessageTarget) Request(ctx context.Context, plain []byte) (*http.Request, error) {
	req, _, _, err := t.build(ctx, plain)
	return req, err
}

// build builds one attempt.
func (t MessageTarget) build(ctx context.Context, plain []byte) (*http.Request, string, string, error) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, "", "", fmt.Errorf("wxtest: message target: %w", err)
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	var b [4]byte
	rand.Read(b[:])
	nonce := strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[:])), 10)
	body := plain
	q := u.Query()
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	if !t.WeCom {
		q.Set("signature", callback.Signature(t.Token, ts, nonce))
	}
	if t.EncodingAESKey != "" {
		c, err := callback.NewCrypter(t.Token, t.EncodingAESKey, t.ReceiveID)
		if err != nil {
			return nil, "", "", fmt.Errorf("wxtest: message target: %w", err)
		}
		var sig string
		if body, sig, err = c.SealRequest(callback.Recipient{ToUserName: t.ReceiveID, AgentID: t.AgentID}, plain, ts, nonce); err != nil {
			return nil, "", "", err
		}
		q.Set("msg_signature", sig)
		if !t.WeCom {
			q.Set("encrypt_type", "aes")
		}
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, "", "", err
	}
	req.Header.Set("Content-Type", "text/xml")
	return req, ts, nonce, nil
}

// replyEnvelope is a safe-mode reply as WeChat reads it.
type replyEnvelope struct {
	Encrypt      string `xml:"Encrypt"`
	MsgSignature string `xml:"MsgSignature"`
	TimeStamp    string `xml:"TimeStamp"`
	Nonce        string `xml:"Nonce"`
}

// OpenReply checks and decrypts a safe-mode passive reply the way WeChat
// does: the signature over token, TimeStamp, Nonce and Encrypt, then the
// ciphertext, sealed for t.ReceiveID.
func (t MessageTarget) OpenReply(body []byte) ([]byte, error) {
	var env replyEnvelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("wxtest: reply envelope: %w", err)
	}
	if env.Encrypt == "" {
		return nil, errors.New("wxtest: reply is not encrypted")
	}
	if callback.MsgSignature(t.Token, env.TimeStamp, env.Nonce, env.Encrypt) != env.MsgSignature {
		return nil, errors.New("wxtest: reply signature does not match")
	}
	c, err := callback.NewCrypter(t.Token, t.EncodingAESKey, t.ReceiveID)
	if err != nil {
		return nil, err
	}
	return c.Decrypt(env.Encrypt)
}

// TextMessage is the XML of a user's text message to an account.
func TextMessage(to, from, content string, msgID int64, at time.Time) []byte {
	return fmt.Appendf(nil, `<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName>`+
		`<CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%d</MsgId></xml>`,
		to, from, at.Unix(), content, msgID)
}

// EventMessage is the XML of an event, such as subscribe, from a user.
func EventMessage(to, from, event, eventKey string, at time.Time) []byte {
	return fmt.Appendf(nil, `<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName>`+
		`<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[%s]]></Event><EventKey><![CDATA[%s]]></EventKey></xml>`,
		to, from, at.Unix(), event, eventKey)
}
