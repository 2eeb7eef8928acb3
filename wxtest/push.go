package wxtest

import (
	"bytes"
	"context"
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

const (
	// startPushDelay is how long after answering api_start_push_ticket the
	// fake pushes the ticket. The platform says only that it pushes soon;
	// under testing/synctest the wait takes no real time.
	startPushDelay = 100 * time.Millisecond

	// pushTimeout bounds a background push, as WeChat gives up on a slow
	// receiver after a few seconds.
	pushTimeout = 5 * time.Second

	// pushAck is the only answer WeChat takes as delivery of a push.
	pushAck = "success"
)

// ErrNoPushTarget reports a push for a component or suite that has no
// target set with SetPushTarget. The change the push was to announce (a new
// ticket, an authorization) is made all the same, as the platform makes it
// whether or not the receiver hears of it.
var ErrNoPushTarget = errors.New("wxtest: no push target")

// PushError reports a push that its target did not acknowledge: WeChat takes
// a push as delivered only when the answer is HTTP 200 with the body
// "success", exactly.
type PushError struct {
	StatusCode int
	Body       string
}

func (e *PushError) Error() string {
	return fmt.Sprintf("wxtest: push not acknowledged: status %d, body %.64q", e.StatusCode, e.Body)
}

// pushTarget is where a component's or suite's pushes go.
type pushTarget struct {
	url    string
	client *http.Client
}

// SetPushTarget sets the authorization-event URL of a component, or the
// command callback URL of a WeCom suite, by its component appid or suite
// id: the fake POSTs its tickets and authorization events there, with
// client (nil means http.DefaultClient). A test under testing/synctest
// passes an in-process client such as HandlerClient's. The target may be
// set before AddComponent or AddSuite, and setting it again replaces it.
func (f *Fake) SetPushTarget(id, url string, client *http.Client) {
	if client == nil {
		client = http.DefaultClient
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets[id] = pushTarget{url: url, client: client}
}

// PushTicket issues a new component_verify_ticket and pushes it to the
// component's target the way WeChat does. The ticket becomes the current
// one at once, whether or not the push is acknowledged; the ticket it
// replaces stays accepted until the next push after this one, and no ticket
// is accepted more than 12 hours after its push.
//
// It returns the ticket, also when err reports that the push failed
// (ErrNoPushTarget, a transport error, or a *PushError), so that a test can
// see what the receiver missed.
func (f *Fake) PushTicket(ctx context.Context, componentAppID string) (ticket string, err error) {
	f.mu.Lock()
	a := f.component(componentAppID)
	if a == nil {
		f.mu.Unlock()
		return "", notComponent(componentAppID)
	}
	now := f.cfg.now()
	ticket, err = f.newTicket(a.component, now)
	if err != nil {
		f.mu.Unlock()
		return "", err
	}
	p, err := f.seal(ctx, a, pushMessage{
		AppID:                 cdataText{a.id},
		CreateTime:            now.Unix(),
		InfoType:              cdataText{callback.InfoComponentVerifyTicket},
		ComponentVerifyTicket: optionalText(ticket),
	}, now)
	f.mu.Unlock()
	return ticket, f.deliver(a.id, p, err)
}

// PushRaw seals plaintext for the component exactly as the fake's own pushes
// are sealed, lets tamper (when not nil) alter the request, and POSTs it to
// the component's target. The plaintext need not be XML, and tamper may
// change the query (a wrong msg_signature), the headers or the body (setting
// ContentLength to match), so that a test can send what WeChat never would.
//
// It returns the target's status and body (up to 64 KiB), whatever they
// are; err reports only a push that could not be built or sent. PushRaw
// changes no state of the fake and is not counted in Stats.
func (f *Fake) PushRaw(ctx context.Context, componentAppID string, plaintext []byte, tamper func(*http.Request)) (status int, body string, err error) {
	return f.pushRaw(ctx, componentAppID, f.component, notComponent, plaintext, tamper)
}

// pushRaw is PushRaw or PushSuiteRaw: find looks id up (under f.mu), and
// notFound is the error when it finds nothing.
func (f *Fake) pushRaw(ctx context.Context, id string, find func(string) *account, notFound func(string) error,
	plaintext []byte, tamper func(*http.Request)) (status int, body string, err error) {
	f.mu.Lock()
	a := find(id)
	if a == nil {
		f.mu.Unlock()
		return 0, "", notFound(id)
	}
	p, err := f.sealRaw(ctx, a, plaintext, f.cfg.now())
	f.mu.Unlock()
	if err != nil {
		return 0, "", err
	}
	if tamper != nil {
		tamper(p.req)
	}
	return p.send()
}

// notComponent is the error of a push for an appid AddComponent never added.
func notComponent(appid string) error {
	return fmt.Errorf("wxtest: %q is not a component", appid)
}

// cdataText marshals as a CDATA section, the way WeChat writes strings.
type cdataText struct {
	Text string `xml:",cdata"`
}

// optionalText is nil for "", so that omitempty drops the element.
func optionalText(s string) *cdataText {
	if s == "" {
		return nil
	}
	return &cdataText{s}
}

// pushMessage is the plaintext of a component push: a ticket or an
// authorization event.
type pushMessage struct {
	XMLName                      xml.Name   `xml:"xml"`
	AppID                        cdataText  `xml:"AppId"`
	CreateTime                   int64      `xml:"CreateTime"`
	InfoType                     cdataText  `xml:"InfoType"`
	ComponentVerifyTicket        *cdataText `xml:"ComponentVerifyTicket,omitempty"`
	AuthorizerAppID              *cdataText `xml:"AuthorizerAppid,omitempty"`
	AuthorizationCode            *cdataText `xml:"AuthorizationCode,omitempty"`
	AuthorizationCodeExpiredTime int64      `xml:"AuthorizationCodeExpiredTime,omitempty"`
	PreAuthCode                  *cdataText `xml:"PreAuthCode,omitempty"`
}

// sealedPush is a push request ready to send, built under f.mu and sent
// without it.
type sealedPush struct {
	req    *http.Request
	client *http.Client
}

// seal marshals msg (a pushMessage or a suitePush) and seals it for a's
// target. The caller holds f.mu.
func (f *Fake) seal(ctx context.Context, a *account, msg any, now time.Time) (*sealedPush, error) {
	plain, err := xml.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("wxtest: marshaling push: %w", err)
	}
	return f.sealRaw(ctx, a, plain, now)
}

// sealRaw builds the request WeChat would send to a's target for plain,
// sealed with a's token and EncodingAESKey for a's id as the receive id
// (the component appid, or the suite id). A component's push carries the
// envelope <xml><AppId/><Encrypt/></xml> and timestamp, nonce,
// msg_signature, encrypt_type=aes and signature in the target URL's query;
// a suite's carries WeCom's <xml><ToUserName/><Encrypt/><AgentID/></xml>,
// the suite id in ToUserName and AgentID empty, and only msg_signature,
// timestamp and nonce (WECHAT.md §5). The caller holds f.mu, which also
// guards Config.Rand.
func (f *Fake) sealRaw(ctx context.Context, a *account, plain []byte, now time.Time) (*sealedPush, error) {
	target, found := f.targets[a.id]
	if !found {
		return nil, fmt.Errorf("%w for %q", ErrNoPushTarget, a.id)
	}
	u, err := url.Parse(target.url)
	if err != nil {
		return nil, fmt.Errorf("wxtest: push target of %q: %w", a.id, err)
	}
	token, key := a.pushKeys()
	c, err := callback.NewCrypter(token, key, a.id)
	if err != nil {
		return nil, fmt.Errorf("wxtest: push keys of %q: %w", a.id, err)
	}
	c.Rand = f.cfg.rand()
	timestamp := strconv.FormatInt(now.Unix(), 10)
	nonce, err := f.nonce()
	if err != nil {
		return nil, err
	}
	q := u.Query()
	var body []byte
	var msgSignature string
	if a.suite != nil {
		body, msgSignature, err = sealWeCom(c, token, a.id, plain, timestamp, nonce)
	} else {
		body, msgSignature, err = c.SealRequest(callback.Recipient{AppID: a.id}, plain, timestamp, nonce)
		q.Set("signature", callback.Signature(token, timestamp, nonce))
		q.Set("encrypt_type", "aes")
	}
	if err != nil {
		return nil, fmt.Errorf("wxtest: sealing push: %w", err)
	}
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	q.Set("msg_signature", msgSignature)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("wxtest: push request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml")
	return &sealedPush{req: req, client: target.client}, nil
}

// weComEnvelope is the body of a WeCom callback request. WeCom writes
// AgentID even when it is empty, as it is for a suite's command callback.
type weComEnvelope struct {
	XMLName    xml.Name   `xml:"xml"`
	ToUserName cdataText  `xml:"ToUserName"`
	Encrypt    cdataText  `xml:"Encrypt"`
	AgentID    emptyCDATA `xml:"AgentID"`
}

// emptyCDATA marshals as an empty CDATA section, which encoding/xml does
// not write for an empty cdataText.
type emptyCDATA struct {
	Inner string `xml:",innerxml"`
}

// noText is the value of an element WeCom writes empty.
var noText = emptyCDATA{"<![CDATA[]]>"}

// sealWeCom encrypts plain with c and wraps it in WeCom's envelope
// addressed to to, returning the body and its msg_signature.
func sealWeCom(c *callback.Crypter, token, to string, plain []byte, timestamp, nonce string) ([]byte, string, error) {
	encrypt, err := c.Encrypt(plain)
	if err != nil {
		return nil, "", err
	}
	body, err := xml.Marshal(weComEnvelope{ToUserName: cdataText{to}, Encrypt: cdataText{encrypt}, AgentID: noText})
	if err != nil {
		return nil, "", err
	}
	return body, callback.MsgSignature(token, timestamp, nonce, encrypt), nil
}

// pushKeys returns the token and EncodingAESKey a's pushes are sealed
// with: a component's or a suite's.
func (a *account) pushKeys() (token, encodingAESKey string) {
	if a.suite != nil {
		return a.suite.cfg.Token, a.suite.cfg.EncodingAESKey
	}
	return a.component.cfg.Token, a.component.cfg.EncodingAESKey
}

// nonce returns a decimal nonce like WeChat's. The caller holds f.mu.
func (f *Fake) nonce() (string, error) {
	var b [4]byte
	if _, err := io.ReadFull(f.cfg.rand(), b[:]); err != nil {
		return "", fmt.Errorf("wxtest: reading randomness: %w", err)
	}
	return strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[:])), 10), nil
}

// send posts the push and returns the target's answer.
func (p *sealedPush) send() (status int, body string, err error) {
	resp, err := p.client.Do(p.req)
	if err != nil {
		return 0, "", fmt.Errorf("wxtest: push: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, string(data), fmt.Errorf("wxtest: reading push answer: %w", err)
	}
	return resp.StatusCode, string(data), nil
}

// deliver sends p, unless sealing it failed with sealErr, and counts the
// push for the component or suite. It returns nil only for an acknowledged push.
func (f *Fake) deliver(appid string, p *sealedPush, sealErr error) error {
	err := sealErr
	if err == nil {
		var status int
		var body string
		status, body, err = p.send()
		if err == nil && (status != http.StatusOK || body != pushAck) {
			err = &PushError{StatusCode: status, Body: body}
		}
	}
	f.count(appid, func(s *Stats) {
		s.Pushes++
		if err != nil {
			s.PushFailures++
		}
	})
	return err
}

// pushLater schedules the push that api_start_push_ticket promises, on a
// goroutine that Close stops. It reports false once Close has begun. The
// caller holds f.mu, which orders wg.Add before Close's wait.
func (f *Fake) pushLater(appid string) bool {
	if f.closed {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if !sleep(f.life, startPushDelay) {
			return
		}
		ctx, cancel := context.WithTimeout(f.life, pushTimeout)
		defer cancel()
		// The outcome shows in Stats.Pushes and Stats.PushFailures.
		f.PushTicket(ctx, appid)
	}()
	return true
}

// Close stops the pushes that api_start_push_ticket scheduled and waits for
// them to end: one still waiting is dropped, one in flight is cancelled.
// Afterwards api_start_push_ticket answers -1; everything else, the Push
// and authorization methods included, works as before. Close may be called
// more than once, and on a Fake that never pushed.
func (f *Fake) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.stop()
	f.wg.Wait()
}
