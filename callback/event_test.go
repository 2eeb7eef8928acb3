package callback

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name string
		xml  string
		want Event
	}{
		{
			"component_verify_ticket",
			`<xml><AppId><![CDATA[wxcomponent]]></AppId><CreateTime>1413192605</CreateTime>` +
				`<InfoType><![CDATA[component_verify_ticket]]></InfoType>` +
				`<ComponentVerifyTicket><![CDATA[ticket@@@xyz]]></ComponentVerifyTicket></xml>`,
			Event{AppID: "wxcomponent", CreateTime: 1413192605, InfoType: InfoComponentVerifyTicket, ComponentVerifyTicket: "ticket@@@xyz"},
		},
		{
			"authorized",
			`<xml><AppId>wxcomponent</AppId><CreateTime>1413192760</CreateTime><InfoType>authorized</InfoType>` +
				`<AuthorizerAppid>wxauthorizer</AuthorizerAppid><AuthorizationCode>queryauthcode@@@abc</AuthorizationCode>` +
				`<AuthorizationCodeExpiredTime>1413196360</AuthorizationCodeExpiredTime><PreAuthCode>preauthcode@@@def</PreAuthCode></xml>`,
			Event{AppID: "wxcomponent", CreateTime: 1413192760, InfoType: InfoAuthorized, AuthorizerAppID: "wxauthorizer",
				AuthorizationCode: "queryauthcode@@@abc", AuthorizationCodeExpiredTime: 1413196360, PreAuthCode: "preauthcode@@@def"},
		},
		{
			"updateauthorized",
			`<xml><InfoType>updateauthorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid><AuthorizationCode>c</AuthorizationCode></xml>`,
			Event{InfoType: InfoUpdateAuthorized, AuthorizerAppID: "wxa", AuthorizationCode: "c"},
		},
		{
			"unauthorized",
			`<xml><AppId>wxcomponent</AppId><CreateTime>1413192760</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>`,
			Event{AppID: "wxcomponent", CreateTime: 1413192760, InfoType: InfoUnauthorized, AuthorizerAppID: "wxa"},
		},
		{
			"suite_ticket",
			"<xml>\n\t<SuiteId><![CDATA[ww4asffe99e54c0f4c]]></SuiteId>\n\t<InfoType> <![CDATA[suite_ticket]]></InfoType>\n" +
				"\t<TimeStamp>1403610513</TimeStamp>\n\t<SuiteTicket><![CDATA[asdfasfdasdfasdf]]></SuiteTicket>\n</xml>",
			// WeCom's own sample has a space before the InfoType CDATA.
			Event{SuiteID: "ww4asffe99e54c0f4c", InfoType: InfoSuiteTicket, Timestamp: 1403610513, SuiteTicket: "asdfasfdasdfasdf"},
		},
		{
			"create_auth",
			`<xml><SuiteId><![CDATA[dk1]]></SuiteId><AuthCode><![CDATA[AUTHCODE]]></AuthCode>` +
				`<InfoType><![CDATA[create_auth]]></InfoType><TimeStamp>1403610513</TimeStamp><State><![CDATA[s1]]></State></xml>`,
			Event{SuiteID: "dk1", AuthCode: "AUTHCODE", InfoType: InfoCreateAuth, Timestamp: 1403610513, State: "s1"},
		},
		{
			"cancel_auth",
			`<xml><SuiteId><![CDATA[ww1]]></SuiteId><InfoType><![CDATA[cancel_auth]]></InfoType>` +
				`<TimeStamp>1403610513</TimeStamp><AuthCorpId><![CDATA[wxf8b4f85f3a794e77]]></AuthCorpId></xml>`,
			Event{SuiteID: "ww1", InfoType: InfoCancelAuth, Timestamp: 1403610513, AuthCorpID: "wxf8b4f85f3a794e77"},
		},
		{
			"ordinary message",
			`<xml><ToUserName>gh_1</ToUserName><CreateTime> 1348831860 </CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>`,
			Event{CreateTime: 1348831860},
		},
		{"unknown InfoType", `<xml><InfoType>notify_third_fasteregister</InfoType></xml>`, Event{InfoType: "notify_third_fasteregister"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.xml))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if got != tt.want {
				t.Errorf("ParseEvent =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseEventRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, xml string
		want      error
	}{
		{"empty", "", ErrMalformed},
		{"not XML", "InfoType=component_verify_ticket", ErrMalformed},
		{"wrong root", "<event><InfoType>authorized</InfoType></event>", ErrMalformed},
		{"unclosed", "<xml><InfoType>authorized</InfoType>", ErrMalformed},
		{"bad CreateTime", "<xml><CreateTime>yesterday</CreateTime></xml>", ErrMalformed},
		{"ticket without ticket", "<xml><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket></ComponentVerifyTicket></xml>", ErrMalformed},
		{"authorized without code", "<xml><InfoType>authorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>", ErrMalformed},
		{"updateauthorized without appid", "<xml><InfoType>updateauthorized</InfoType><AuthorizationCode>c</AuthorizationCode></xml>", ErrMalformed},
		{"unauthorized without appid", "<xml><InfoType>unauthorized</InfoType></xml>", ErrMalformed},
		{"suite_ticket without suite", "<xml><InfoType>suite_ticket</InfoType><SuiteTicket>t</SuiteTicket></xml>", ErrMalformed},
		{"suite_ticket without ticket", "<xml><InfoType>suite_ticket</InfoType><SuiteId>s</SuiteId></xml>", ErrMalformed},
		{"create_auth without code", "<xml><InfoType>create_auth</InfoType><SuiteId>s</SuiteId></xml>", ErrMalformed},
		{"reset_permanent_code without code", "<xml><InfoType>reset_permanent_code</InfoType><AuthCode> </AuthCode></xml>", ErrMalformed},
		{"cancel_auth without corp", "<xml><InfoType>cancel_auth</InfoType><SuiteId>s</SuiteId></xml>", ErrMalformed},
		{"change_auth without corp", "<xml><InfoType>change_auth</InfoType></xml>", ErrMalformed},
		{"blank ticket", "<xml><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket> \n </ComponentVerifyTicket></xml>", ErrMalformed},
		{"oversized", "<xml>" + strings.Repeat(" ", MaxBodySize) + "</xml>", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.xml))
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseEvent = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestTicketPushEndToEnd follows a component_verify_ticket from a fake
// WeChat's SealRequest through DecryptMessage and ParseEvent.
func TestTicketPushEndToEnd(t *testing.T) {
	const componentAppID = "wx0123456789abcdef"
	wechat := newCrypter(t, oaToken, oaKey, componentAppID)
	server := newCrypter(t, oaToken, oaKey, componentAppID)
	push := `<xml><AppId><![CDATA[` + componentAppID + `]]></AppId><CreateTime>1714037059</CreateTime>` +
		`<InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@0123]]></ComponentVerifyTicket></xml>`
	body, sig, err := wechat.SealRequest(Recipient{AppID: componentAppID}, []byte(push), "1714037059", "486452656")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := server.DecryptMessage(sig, "1714037059", "486452656", body)
	if err != nil {
		t.Fatalf("DecryptMessage: %v", err)
	}
	ev, err := ParseEvent(plain)
	if err != nil {
		t.Fatalf("ParseEvent: %v", err)
	}
	want := Event{AppID: componentAppID, CreateTime: 1714037059, InfoType: InfoComponentVerifyTicket, ComponentVerifyTicket: "ticket@@@0123"}
	if ev != want {
		t.Errorf("event = %+v, want %+v", ev, want)
	}
}
