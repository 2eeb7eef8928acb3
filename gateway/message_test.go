package gateway

import (
	"errors"
	"testing"

	"github.com/wxtoken/wxtoken/config"
)

const textMsg = `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName>` +
	`<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[a < b & c]]></Content>` +
	`<MsgId>1234567890123456</MsgId></xml>`

const scanEvent = `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName>` +
	`<CreateTime>1348831861</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event>` +
	`<EventKey><![CDATA[qrscene_42]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType></ScanCodeInfo></xml>`

func TestParse(t *testing.T) {
	m, err := Parse([]byte(textMsg))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"ToUserName": "gh_1", "FromUserName": "o_user", "CreateTime": "1348831860",
		"MsgType": "text", "Content": "a < b & c", "MsgId": "1234567890123456"} {
		if got := m.Fields[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if m.ID != "1234567890123456" || m.User() != "o_user" {
		t.Errorf("id = %q, user = %q; want the MsgId and FromUserName", m.ID, m.User())
	}
	e, err := Parse([]byte(scanEvent))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Fields["ScanCodeInfo"]; got != "<ScanType><![CDATA[qrcode]]></ScanType>" {
		t.Errorf("nested element = %q, want its inner XML", got)
	}
	again, _ := Parse([]byte(scanEvent))
	if e.ID == "" || e.ID != again.ID || e.ID == m.ID {
		t.Errorf("event id = %q (again %q): want a stable digest, apart from the text message's", e.ID, again.ID)
	}
	other, _ := Parse([]byte(`<xml><FromUserName>o_user</FromUserName><CreateTime>1348831861</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>`))
	if other.ID == e.ID {
		t.Errorf("two events of one user and second share id %q", e.ID)
	}
}

func TestParseBad(t *testing.T) {
	for _, in := range []string{"", "not xml", "<xml><MsgType>text</MsgType>", "<xml><Content>x</Content></xml>", "<other><MsgType>text</MsgType></other>"} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrMessage) {
			t.Errorf("Parse(%q) err = %v, want ErrMessage", in, err)
		}
	}
}

func TestMatches(t *testing.T) {
	text, _ := Parse([]byte(textMsg))
	scan, _ := Parse([]byte(scanEvent))
	for _, tc := range []struct {
		name       string
		match      config.Match
		text, scan bool
	}{
		{"empty matches all", config.Match{}, true, true},
		{"msg_type", config.Match{MsgType: []string{"text", "image"}}, true, false},
		{"event", config.Match{Event: []string{"scancode_push"}}, false, true},
		{"event and type", config.Match{MsgType: []string{"event"}, Event: []string{"subscribe"}}, false, false},
		{"event key prefix", config.Match{EventKeyPrefix: []string{"x", "qrscene_"}}, false, true},
		{"event key prefix miss", config.Match{EventKeyPrefix: []string{"qrscene_5"}}, false, false},
		{"info_type", config.Match{InfoType: []string{"authorized"}}, false, false},
		{"authorizer", config.Match{Authorizer: []string{"wx1"}}, false, false},
	} {
		r := Rule{config.Forward{Match: tc.match}}
		if got := r.Matches(text, ""); got != tc.text {
			t.Errorf("%s: text matches = %v, want %v", tc.name, got, tc.text)
		}
		if got := r.Matches(scan, ""); got != tc.scan {
			t.Errorf("%s: scan matches = %v, want %v", tc.name, got, tc.scan)
		}
	}
	if !(Rule{config.Forward{Match: config.Match{Authorizer: []string{"wx1"}}}}).Matches(text, "wx1") {
		t.Error("authorizer rule does not match its authorizer's message")
	}
}
