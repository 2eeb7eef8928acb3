package callback

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// InfoType values of the pushes the token server acts on.
const (
	// InfoComponentVerifyTicket marks the ticket WeChat pushes to a
	// third-party platform every ten minutes. It is valid for 12 hours and
	// is needed to obtain a component_access_token.
	InfoComponentVerifyTicket = "component_verify_ticket"

	// InfoAuthorized marks an account owner's first authorization of a
	// third-party platform. Its AuthorizationCode yields the authorizer's
	// refresh token.
	InfoAuthorized = "authorized"

	// InfoUpdateAuthorized marks a change to an existing authorization; it
	// carries a fresh AuthorizationCode like InfoAuthorized.
	InfoUpdateAuthorized = "updateauthorized"

	// InfoUnauthorized marks the withdrawal of an authorization; the
	// authorizer's tokens stop working.
	InfoUnauthorized = "unauthorized"

	// InfoSuiteTicket marks the ticket WeCom pushes to a suite every ten
	// minutes. It is valid for 30 minutes and is needed to obtain a
	// suite_access_token.
	InfoSuiteTicket = "suite_ticket"

	// InfoCreateAuth marks a corp's installation of a WeCom suite. Its
	// AuthCode, valid ten minutes and good once, is exchanged through
	// get_permanent_code for the corp's permanent code.
	InfoCreateAuth = "create_auth"

	// InfoChangeAuth marks a change to what an authorized corp granted
	// the suite (AuthCorpId); the permanent code stays.
	InfoChangeAuth = "change_auth"

	// InfoCancelAuth marks a corp's removal of the suite (AuthCorpId);
	// its permanent code and tokens stop working.
	InfoCancelAuth = "cancel_auth"

	// InfoResetPermanentCode marks a custom-developed app (代开发) whose
	// permanent code, the corp's app secret, was reset: its AuthCode
	// buys the new one, and the old one stops working.
	InfoResetPermanentCode = "reset_permanent_code"
)

// Event is a decrypted push from WeChat or WeCom, reduced to the fields the
// token server uses. Fields a push does not carry are left zero. Times are
// Unix seconds.
//
// A push can be replayed by anyone who recorded it, and its signature stays
// valid; a receiver keeping the newest ticket should compare CreateTime (or
// Timestamp) with the one it holds instead of storing whatever arrives last.
type Event struct {
	// AppID is the component appid of an Open Platform push.
	AppID string `xml:"AppId"`

	// CreateTime is when WeChat created an Open Platform push.
	CreateTime int64 `xml:"CreateTime"`

	// InfoType says what the push is; see the Info constants.
	InfoType string `xml:"InfoType"`

	// ComponentVerifyTicket is the ticket of an InfoComponentVerifyTicket
	// push.
	ComponentVerifyTicket string `xml:"ComponentVerifyTicket"`

	// AuthorizerAppID is the account that authorized, updated or withdrew
	// an authorization.
	AuthorizerAppID string `xml:"AuthorizerAppid"`

	// AuthorizationCode is exchanged through api_query_auth for the
	// authorizer's tokens.
	AuthorizationCode string `xml:"AuthorizationCode"`

	// AuthorizationCodeExpiredTime is when AuthorizationCode expires.
	AuthorizationCodeExpiredTime int64 `xml:"AuthorizationCodeExpiredTime"`

	// PreAuthCode is the pre-authorization code the authorization used.
	PreAuthCode string `xml:"PreAuthCode"`

	// SuiteID is the WeCom suite of an InfoSuiteTicket push.
	SuiteID string `xml:"SuiteId"`

	// SuiteTicket is the ticket of an InfoSuiteTicket push.
	SuiteTicket string `xml:"SuiteTicket"`

	// Timestamp is when WeCom created a suite push.
	Timestamp int64 `xml:"TimeStamp"`

	// AuthCode is the temporary code of an InfoCreateAuth or
	// InfoResetPermanentCode push.
	AuthCode string `xml:"AuthCode"`

	// AuthCorpID is the corp of an InfoChangeAuth or InfoCancelAuth push.
	AuthCorpID string `xml:"AuthCorpId"`

	// State is what the installation link carried (create_auth).
	State string `xml:"State"`
}

// eventXML pins the root element to <xml>; the embedded Event's fields are
// its children.
type eventXML struct {
	XMLName xml.Name `xml:"xml"`
	Event
}

// trim strips surrounding whitespace from the string fields. WeCom's own
// suite_ticket sample writes "<InfoType> <![CDATA[suite_ticket]]></InfoType>",
// and a pretty-printed push puts newlines around every CDATA section; none of
// these values has meaningful whitespace at either end, and an InfoType of
// " suite_ticket" would otherwise make the server drop the ticket.
func (e *Event) trim() {
	for _, f := range []*string{
		&e.AppID, &e.InfoType, &e.ComponentVerifyTicket, &e.AuthorizerAppID,
		&e.AuthorizationCode, &e.PreAuthCode, &e.SuiteID, &e.SuiteTicket,
		&e.AuthCode, &e.AuthCorpID, &e.State,
	} {
		*f = strings.TrimSpace(*f)
	}
}

// missing names the first field that e's InfoType exists to deliver but e
// lacks, or returns "". A ticket push without a ticket must fail to parse,
// not overwrite a good ticket with an empty one.
func (e *Event) missing() string {
	switch e.InfoType {
	case InfoComponentVerifyTicket:
		if e.ComponentVerifyTicket == "" {
			return "ComponentVerifyTicket"
		}
	case InfoAuthorized, InfoUpdateAuthorized:
		if e.AuthorizerAppID == "" {
			return "AuthorizerAppid"
		}
		if e.AuthorizationCode == "" {
			return "AuthorizationCode"
		}
	case InfoUnauthorized:
		if e.AuthorizerAppID == "" {
			return "AuthorizerAppid"
		}
	case InfoSuiteTicket:
		if e.SuiteID == "" {
			return "SuiteId"
		}
		if e.SuiteTicket == "" {
			return "SuiteTicket"
		}
	case InfoCreateAuth, InfoResetPermanentCode:
		if e.AuthCode == "" {
			return "AuthCode"
		}
	case InfoChangeAuth, InfoCancelAuth:
		if e.AuthCorpID == "" {
			return "AuthCorpId"
		}
	}
	return ""
}

// ParseEvent parses the plaintext XML that DecryptMessage returns.
//
// Surrounding whitespace is trimmed from every field. For the InfoType values
// declared in this package ParseEvent also checks that the fields the push
// exists to deliver are present. Any other InfoType, or none (an ordinary
// Official Account message), is returned as parsed for the caller to ignore.
// Errors wrap ErrTooLarge or ErrMalformed.
func ParseEvent(plain []byte) (Event, error) {
	if len(plain) > MaxBodySize {
		return Event{}, fmt.Errorf("%w: event is %d bytes, limit %d", ErrTooLarge, len(plain), MaxBodySize)
	}
	var x eventXML
	if err := xml.Unmarshal(plain, &x); err != nil {
		return Event{}, fmt.Errorf("%w: event: %v", ErrMalformed, err)
	}
	x.trim()
	if name := x.missing(); name != "" {
		return Event{}, fmt.Errorf("%w: %s event has no %s", ErrMalformed, x.InfoType, name)
	}
	return x.Event, nil
}
