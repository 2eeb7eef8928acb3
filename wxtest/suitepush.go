package wxtest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/wxtoken/wxtoken/callback"
)

// suitePush is the plaintext of a suite push: a suite_ticket or an
// authorization event (WECHAT.md §7). WeCom writes TimeStamp in seconds.
type suitePush struct {
	XMLName     xml.Name    `xml:"xml"`
	SuiteID     cdataText   `xml:"SuiteId"`
	AuthCode    *cdataText  `xml:"AuthCode,omitempty"`
	InfoType    cdataText   `xml:"InfoType"`
	TimeStamp   int64       `xml:"TimeStamp"`
	SuiteTicket *cdataText  `xml:"SuiteTicket,omitempty"`
	AuthCorpID  *cdataText  `xml:"AuthCorpId,omitempty"`
	State       *emptyCDATA `xml:"State,omitempty"`
}

// PushSuiteTicket issues a new suite_ticket and pushes it to the suite's
// target the way WeCom does, as
// <xml><SuiteId/><InfoType>suite_ticket</InfoType><TimeStamp/><SuiteTicket/></xml>.
// The ticket becomes the current one at once, whether or not the push is
// acknowledged. get_suite_token accepts the current ticket and the
// previous one, each for 30 minutes from its push; older ones, and values
// never pushed, answer 40085. WeCom pushes every 10 minutes and has no
// API to ask for a push: a test calls this instead.
//
// It returns the ticket, also when err reports that the push failed
// (ErrNoPushTarget, a transport error, or a *PushError).
func (f *Fake) PushSuiteTicket(ctx context.Context, suiteID string) (ticket string, err error) {
	f.mu.Lock()
	a := f.suite(suiteID)
	if a == nil {
		f.mu.Unlock()
		return "", notSuite(suiteID)
	}
	now := f.cfg.now()
	ticket, err = f.newSuiteTicket(a.suite, now)
	if err != nil {
		f.mu.Unlock()
		return "", err
	}
	p, err := f.seal(ctx, a, suitePush{
		SuiteID:     cdataText{a.id},
		InfoType:    cdataText{callback.InfoSuiteTicket},
		TimeStamp:   now.Unix(),
		SuiteTicket: optionalText(ticket),
	}, now)
	f.mu.Unlock()
	return ticket, f.deliver(a.id, p, err)
}

// CreateAuth plays a corp installing the suite: it issues an auth code,
// which get_permanent_code exchanges once within 10 minutes, and pushes
// <xml><SuiteId/><AuthCode/><InfoType>create_auth</InfoType><TimeStamp/><State/></xml>.
// The exchange gives the authorization a new permanent code (and, unless
// the corp's authorization was still working, a new agentid); until then a
// permanent code the corp had keeps working. The authorization's id,
// "suiteid/corpid", becomes an account of the fake, so Stats reports on it.
//
// The code is issued even when the push fails; it is returned with the
// error then (ErrNoPushTarget, a transport error or a *PushError).
func (f *Fake) CreateAuth(ctx context.Context, suiteID, corpid string) (authCode string, err error) {
	if corpid == "" {
		return "", errors.New("wxtest: empty corpid")
	}
	return f.pushAuthCode(ctx, suiteID, corpid, callback.InfoCreateAuth)
}

// ResetPermanentCode plays the administrator of a corp resetting the
// secret of a custom-developed app (代开发): it issues an auth code and
// pushes reset_permanent_code with it (SuiteId, AuthCode, InfoType,
// TimeStamp). Exchanging the code at get_permanent_code issues a new
// permanent code, and the old one stops working at that moment (gettoken
// answers 40001 for it); corp tokens already issued live on.
//
// It fails, pushing nothing, for a suite that is not a custom app template
// or a corp whose authorization is not working. The code is returned also
// when the push fails, as by CreateAuth.
func (f *Fake) ResetPermanentCode(ctx context.Context, suiteID, corpid string) (authCode string, err error) {
	return f.pushAuthCode(ctx, suiteID, corpid, callback.InfoResetPermanentCode)
}

// pushAuthCode issues an auth code for a create_auth or
// reset_permanent_code push and pushes it.
func (f *Fake) pushAuthCode(ctx context.Context, suiteID, corpid, infoType string) (string, error) {
	f.mu.Lock()
	a := f.suite(suiteID)
	if a == nil {
		f.mu.Unlock()
		return "", notSuite(suiteID)
	}
	msg := suitePush{SuiteID: cdataText{a.id}, InfoType: cdataText{infoType}}
	if infoType == callback.InfoCreateAuth {
		// The install link's state parameter; the fake's installs carry none.
		msg.State = &emptyCDATA{noText.Inner}
		f.suiteAuthorization(a, corpid)
	} else {
		if !a.suite.custom() {
			f.mu.Unlock()
			return "", fmt.Errorf("wxtest: suite %q is not a custom app template", suiteID)
		}
		if !a.suite.auths[corpid].active() {
			f.mu.Unlock()
			return "", notSuiteAuthorized(suiteID, corpid)
		}
	}
	now := f.cfg.now()
	code, err := f.newAuthCode(a.suite, corpid, now)
	if err != nil {
		f.mu.Unlock()
		return "", err
	}
	msg.AuthCode, msg.TimeStamp = optionalText(code), now.Unix()
	p, err := f.seal(ctx, a, msg, now)
	f.mu.Unlock()
	return code, f.deliver(a.id, p, err)
}

// ChangeAuth plays a corp changing the suite's permissions, and pushes
// change_auth (SuiteId, InfoType, TimeStamp, AuthCorpId). Nothing else
// changes. It fails, pushing nothing, when the corp's authorization is not
// working; otherwise err reports only the push.
func (f *Fake) ChangeAuth(ctx context.Context, suiteID, corpid string) error {
	return f.pushAuthChange(ctx, suiteID, corpid, callback.InfoChangeAuth)
}

// CancelAuth plays a corp withdrawing its authorization, and pushes
// cancel_auth (SuiteId, InfoType, TimeStamp, AuthCorpId). From then on the
// permanent code answers 40084 at get_corp_token and, for a custom app,
// 40001 at gettoken; the corp tokens it issued answer 40001 at once (the
// overlap of a replaced token does not apply); unexchanged auth codes of
// the corp answer 40078. CreateAuth starts a new authorization, with a new
// permanent code.
//
// It fails, pushing nothing, when the corp's authorization is not working.
// The withdrawal is made even when the push fails, which err then reports.
func (f *Fake) CancelAuth(ctx context.Context, suiteID, corpid string) error {
	return f.pushAuthChange(ctx, suiteID, corpid, callback.InfoCancelAuth)
}

// pushAuthChange makes a change_auth or cancel_auth change and pushes it.
func (f *Fake) pushAuthChange(ctx context.Context, suiteID, corpid, infoType string) error {
	f.mu.Lock()
	a := f.suite(suiteID)
	if a == nil {
		f.mu.Unlock()
		return notSuite(suiteID)
	}
	auth := a.suite.auths[corpid]
	if !auth.active() {
		f.mu.Unlock()
		return notSuiteAuthorized(suiteID, corpid)
	}
	now := f.cfg.now()
	if infoType == callback.InfoCancelAuth {
		auth.permanent = ""
		for _, t := range auth.tokens {
			revoke(t, now)
		}
		auth.token = nil
		for code, c := range a.suite.codes {
			if c.corp == corpid {
				delete(a.suite.codes, code)
			}
		}
	}
	p, err := f.seal(ctx, a, suitePush{
		SuiteID:    cdataText{a.id},
		InfoType:   cdataText{infoType},
		TimeStamp:  now.Unix(),
		AuthCorpID: optionalText(corpid),
	}, now)
	f.mu.Unlock()
	return f.deliver(a.id, p, err)
}

// notSuiteAuthorized is the error of a change to an authorization that is
// not working.
func notSuiteAuthorized(suiteID, corpid string) error {
	return fmt.Errorf("wxtest: %q has no working authorization of suite %q", corpid, suiteID)
}

// PushSuiteRaw seals plaintext for the suite exactly as the fake's own
// suite pushes are sealed, lets tamper (when not nil) alter the request,
// and POSTs it to the suite's target, as PushRaw does for a component. It
// returns the target's status and body; err reports only a push that could
// not be built or sent. It changes no state and is not counted in Stats.
func (f *Fake) PushSuiteRaw(ctx context.Context, suiteID string, plaintext []byte, tamper func(*http.Request)) (status int, body string, err error) {
	return f.pushRaw(ctx, suiteID, f.suite, notSuite, plaintext, tamper)
}
