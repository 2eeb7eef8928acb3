package wxtest

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wxtoken/wxtoken/callback"
)

// The suites every suite test starts with: a third-party app template, a
// custom-developed one (its id starts "dk"), a corp that installs them and
// a service provider.
const (
	suiteID        = "ww00000000000000s1"
	suiteSecret    = "suite-secret"
	customSuiteID  = "dk00000000000000s2"
	customSecret   = "custom-suite-secret"
	authCorpID     = "ww00000000000000c9"
	providerCorpID = "ww00000000000000p1"
	providerSecret = "provider-secret"
)

var (
	testSuite = Suite{
		SuiteID:        suiteID,
		Secret:         suiteSecret,
		Token:          "suite-token",
		EncodingAESKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
	}
	testCustomSuite = Suite{
		SuiteID:        customSuiteID,
		Secret:         customSecret,
		Token:          "custom-token",
		EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
	}
)

// suiteEvent is a decrypted suite push: what callback.ParseEvent reads,
// and the authorization fields it does not read yet.
type suiteEvent struct {
	callback.Event
	AuthCode   string
	AuthCorpID string
	HasState   bool
}

// suiteReceiver is a suite's command callback URL as a token server serves
// it, written from WECHAT.md §5 and §7 rather than from the fake: it checks
// WeCom's query and envelope, the msg_signature, decrypts for the suite id
// as receive id and answers "success". It refuses anything else with 400.
type suiteReceiver struct {
	suite   Suite
	crypter *callback.Crypter

	mu      sync.Mutex
	events  []suiteEvent
	refused []error
	answer  func(http.ResponseWriter) // nil: "success"
}

func newSuiteReceiver(s Suite) *suiteReceiver {
	crypter, err := callback.NewCrypter(s.Token, s.EncodingAESKey, s.SuiteID)
	if err != nil {
		panic(err) // the test suites are constants
	}
	return &suiteReceiver{suite: s, crypter: crypter}
}

func (rc *suiteReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev, err := rc.open(w, r)
	rc.mu.Lock()
	if err != nil {
		rc.refused = append(rc.refused, err)
	} else {
		rc.events = append(rc.events, ev)
	}
	answer := rc.answer
	rc.mu.Unlock()
	switch {
	case err != nil:
		http.Error(w, "refused: "+err.Error(), http.StatusBadRequest)
	case answer != nil:
		answer(w)
	default:
		io.WriteString(w, "success")
	}
}

// open checks one push and returns its event.
func (rc *suiteReceiver) open(w http.ResponseWriter, r *http.Request) (suiteEvent, error) {
	if r.Method != http.MethodPost {
		return suiteEvent{}, fmt.Errorf("method %s", r.Method)
	}
	q := r.URL.Query()
	// WeCom sends msg_signature, timestamp and nonce only.
	if q.Has("encrypt_type") || q.Has("signature") {
		return suiteEvent{}, fmt.Errorf("query %s has Official Account parameters", r.URL.RawQuery)
	}
	ts, nonce, msgSignature := q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, callback.MaxBodySize))
	if err != nil {
		return suiteEvent{}, err
	}
	var env struct {
		ToUserName string  `xml:"ToUserName"`
		Encrypt    string  `xml:"Encrypt"`
		AgentID    *string `xml:"AgentID"`
		AppID      *string `xml:"AppId"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return suiteEvent{}, fmt.Errorf("envelope: %w", err)
	}
	if env.ToUserName != rc.suite.SuiteID || env.AgentID == nil || *env.AgentID != "" || env.AppID != nil {
		return suiteEvent{}, fmt.Errorf("envelope %s: want ToUserName %s, an empty AgentID, no AppId", body, rc.suite.SuiteID)
	}
	if !callback.VerifyMsgSignature(rc.suite.Token, ts, nonce, env.Encrypt, msgSignature) {
		return suiteEvent{}, errors.New("msg_signature does not match")
	}
	plain, err := rc.crypter.DecryptMessage(msgSignature, ts, nonce, body)
	if err != nil {
		return suiteEvent{}, err
	}
	return parseSuiteEvent(plain, ts, rc.suite.SuiteID)
}

// parseSuiteEvent parses a suite push's plaintext and checks its SuiteId
// and TimeStamp against the suite and the query's timestamp.
func parseSuiteEvent(plain []byte, ts, suiteID string) (suiteEvent, error) {
	ev, err := callback.ParseEvent(plain)
	if err != nil {
		return suiteEvent{}, err
	}
	var extra struct {
		AuthCode   string  `xml:"AuthCode"`
		AuthCorpID string  `xml:"AuthCorpId"`
		State      *string `xml:"State"`
	}
	if err := xml.Unmarshal(plain, &extra); err != nil {
		return suiteEvent{}, err
	}
	if ev.SuiteID != suiteID || strconv.FormatInt(ev.Timestamp, 10) != ts {
		return suiteEvent{}, fmt.Errorf("event SuiteId %q TimeStamp %d, query timestamp %s", ev.SuiteID, ev.Timestamp, ts)
	}
	return suiteEvent{Event: ev, AuthCode: extra.AuthCode, AuthCorpID: extra.AuthCorpID, HasState: extra.State != nil}, nil
}

func (rc *suiteReceiver) all() []suiteEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.events)
}

// last returns the newest event, or a zero one.
func (rc *suiteReceiver) last() suiteEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.events) == 0 {
		return suiteEvent{}
	}
	return rc.events[len(rc.events)-1]
}

func (rc *suiteReceiver) refusals() []error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.refused)
}

func (rc *suiteReceiver) setAnswer(fn func(http.ResponseWriter)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = fn
}

// suiteReply is the union of the suite endpoints' answers. ErrCode is a
// pointer so that a test can tell an absent errcode from 0.
type suiteReply struct {
	Status              int    `json:"-"`
	Body                string `json:"-"`
	ErrCode             *int   `json:"errcode"`
	ErrMsg              string `json:"errmsg"`
	SuiteAccessToken    string `json:"suite_access_token"`
	ProviderAccessToken string `json:"provider_access_token"`
	AccessToken         string `json:"access_token"`
	ExpiresIn           int    `json:"expires_in"`
	PermanentCode       string `json:"permanent_code"`
	AuthCorpInfo        struct {
		CorpID   string `json:"corpid"`
		CorpName string `json:"corp_name"`
	} `json:"auth_corp_info"`
	AuthInfo struct {
		Agent []struct {
			AgentID int64  `json:"agentid"`
			Name    string `json:"name"`
		} `json:"agent"`
	} `json:"auth_info"`
	IsCustomizedApp bool `json:"is_customized_app"`
}

// code is the answer's errcode, 0 when it has none.
func (r suiteReply) code() int {
	if r.ErrCode == nil {
		return 0
	}
	return *r.ErrCode
}

// service posts body to /cgi-bin/service/path, with
// ?suite_access_token=token when token is set.
func (c caller) service(path, token string, body any) suiteReply {
	c.t.Helper()
	var q url.Values
	if token != "" {
		q = url.Values{"suite_access_token": {token}}
	}
	data, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := c.do(http.MethodPost, "/cgi-bin/service/"+path, q, string(data))
	var sr suiteReply
	if r.Status == http.StatusOK && strings.HasPrefix(r.Body, "{") {
		if err := json.Unmarshal([]byte(r.Body), &sr); err != nil {
			c.t.Fatalf("decoding %s: %v", r.Body, err)
		}
	}
	sr.Status, sr.Body = r.Status, r.Body
	return sr
}

func (c caller) suiteToken(id, secret, ticket string) suiteReply {
	c.t.Helper()
	return c.service("get_suite_token", "", map[string]string{"suite_id": id, "suite_secret": secret, "suite_ticket": ticket})
}

func (c caller) permanentCode(token, code string, v1 bool) suiteReply {
	c.t.Helper()
	path := "v2/get_permanent_code"
	if v1 {
		path = "get_permanent_code"
	}
	return c.service(path, token, map[string]string{"auth_code": code})
}

func (c caller) corpToken(token, corpid, permanent string) suiteReply {
	c.t.Helper()
	return c.service("get_corp_token", token, map[string]string{"auth_corpid": corpid, "permanent_code": permanent})
}

func (c caller) providerToken(corpid, secret string) suiteReply {
	c.t.Helper()
	return c.service("get_provider_token", "", map[string]string{"corpid": corpid, "provider_secret": secret})
}

// weComUse calls get_api_domain_ip with token and returns the errcode.
func (c caller) weComUse(token string) int {
	c.t.Helper()
	r := c.do(http.MethodGet, "/cgi-bin/get_api_domain_ip", url.Values{"access_token": {token}}, "")
	if r.ErrCode == 0 && len(r.IPList) == 0 {
		c.t.Fatalf("get_api_domain_ip: no errcode and no ip_list: %s", r.Body)
	}
	return r.ErrCode
}

// suiteEnv is an env with both test suites and the provider added, and
// each suite's pushes going to its receiver in-process.
type suiteEnv struct {
	env
	recv, customRecv *suiteReceiver
}

func newSuiteEnv(t *testing.T, cfg Config) suiteEnv {
	e := newEnv(t, cfg)
	e.f.AddSuite(testSuite)
	e.f.AddSuite(testCustomSuite)
	e.f.AddProvider(providerCorpID, providerSecret)
	recv, customRecv := newSuiteReceiver(testSuite), newSuiteReceiver(testCustomSuite)
	e.f.SetPushTarget(suiteID, "https://provider.example/wecom/suite?s=1", HandlerClient(recv))
	e.f.SetPushTarget(customSuiteID, "https://provider.example/wecom/custom", HandlerClient(customRecv))
	e.base = "https://qyapi.weixin.qq.com"
	return suiteEnv{env: e, recv: recv, customRecv: customRecv}
}

// receiverOf returns the receiver of suite id.
func (e suiteEnv) receiverOf(id string) *suiteReceiver {
	if id == customSuiteID {
		return e.customRecv
	}
	return e.recv
}

// ticket pushes a new suite_ticket and checks that the receiver got it.
func (e suiteEnv) ticket(id string) string {
	e.t.Helper()
	ticket, err := e.f.PushSuiteTicket(context.Background(), id)
	if err != nil {
		e.t.Fatalf("PushSuiteTicket: %v", err)
	}
	if got := e.receiverOf(id).last(); got.InfoType != callback.InfoSuiteTicket || got.SuiteTicket != ticket {
		e.t.Fatalf("receiver holds %+v, PushSuiteTicket returned %q; refused %v", got, ticket, e.receiverOf(id).refusals())
	}
	return ticket
}

// suiteAccess fetches a suite token with a freshly pushed ticket.
func (e suiteEnv) suiteAccess(id, secret string) string {
	e.t.Helper()
	r := e.suiteToken(id, secret, e.ticket(id))
	if r.code() != 0 || r.SuiteAccessToken == "" {
		e.t.Fatalf("suite token: %s", r.Body)
	}
	return r.SuiteAccessToken
}

// install plays corpid installing suite id, exchanges the auth code with
// v2 and returns the answer.
func (e suiteEnv) install(token, id, corpid string) suiteReply {
	e.t.Helper()
	code, err := e.f.CreateAuth(context.Background(), id, corpid)
	if err != nil {
		e.t.Fatalf("CreateAuth: %v", err)
	}
	r := e.permanentCode(token, code, false)
	if r.code() != 0 || r.PermanentCode == "" {
		e.t.Fatalf("get_permanent_code: %s", r.Body)
	}
	return r
}
