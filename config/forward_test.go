package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

const forwardHead = `
listen: 127.0.0.1:9000
data_dir: /tmp/x
credentials:
  - kind: mp
    appid: wx1234567890abcdef
    secret: s
    callback:
      token: tok
      encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
      forward:
`

func TestForwardGood(t *testing.T) {
	c, err := config.Parse([]byte(forwardHead+`
        - name: bot
          match: {msg_type: [text, image]}
          to: http://bot.internal/wechat
          mode: reply
          secret: ${BOT}
        - name: crm
          match: {event: [subscribe, unsubscribe], event_key_prefix: [qrscene_]}
          to: https://crm.internal/wechat-events
          secret: ${CRM}
          timeout: 3s
`), env(map[string]string{"BOT": "0123456789abcdef", "CRM": "fedcba9876543210"}))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Credentials[0].Callback.Forward
	if len(f) != 2 || f[0].Mode != config.ForwardReply || f[0].Secret != "0123456789abcdef" ||
		strings.Join(f[0].Match.MsgType, ",") != "text,image" || f[1].Mode != "" || f[1].Match.EventKeyPrefix[0] != "qrscene_" {
		t.Errorf("forward = %+v", f)
	}
	if c.Callbacks.DedupWindow <= 0 || c.Callbacks.DeadAfter <= 0 || c.Callbacks.MaxBackoff <= 0 {
		t.Errorf("gateway defaults not applied: %+v", c.Callbacks)
	}
}

func TestForwardBad(t *testing.T) {
	for _, tc := range []struct{ rules, want string }{
		{"- {to: http://a/, secret: 0123456789abcdef}", "forward[0].name: required"},
		{"- {name: a, to: http://a/, secret: 0123456789abcdef}\n        - {name: a, to: http://b/, secret: 0123456789abcdef}", "forward[1].name: \"a\" is used"},
		{"- {name: a, to: ftp://a/, secret: 0123456789abcdef}", "forward[0].to: want an http(s) URL"},
		{"- {name: a, to: http://a/, secret: short}", "forward[0].secret: required, at least 16"},
		{"- {name: a, to: http://a/}", "forward[0].secret: required"},
		{"- {name: a, to: http://a/, secret: 0123456789abcdef, mode: push}", "forward[0].mode: want queue or reply"},
		{"- {name: a, to: http://a/, secret: 0123456789abcdef, mode: reply}\n        - {name: b, to: http://b/, secret: 0123456789abcdef, mode: reply}", "forward[1].mode: only one reply rule"},
		{"- {name: a, to: http://a/, secret: 0123456789abcdef, mode: reply, timeout: 5s}", "forward[0].timeout: at most 4.5s"},
		{"- {name: a, to: http://a/, secret: 0123456789abcdef, match: {authorizer: [wx1]}}", "forward[0].match.authorizer: only for a platform"},
		{"- {name: a, to: http://a/, secret: 0123456789abcdef, match: {msg_type: ['']}}", "forward[0].match.msg_type: empty value"},
		{"- {name: a, to: http://a/, secret: 0123456789abcdef, match: {msgtype: [text]}}", "unknown field \"msgtype\""},
	} {
		_, err := config.Parse([]byte(forwardHead+"        "+tc.rules+"\n"), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rules %s: err = %v, want it to contain %q", tc.rules, err, tc.want)
		}
	}
}

func TestDedupWindowCoversReplayWindow(t *testing.T) {
	c, err := config.Parse([]byte(forwardHead+"        - {name: a, to: http://a/, secret: 0123456789abcdef}\ncallbacks: {max_skew: 8m}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Callbacks.DedupWindow != 16*time.Minute {
		t.Errorf("dedup_window = %s, want the default raised to twice max_skew, 16m", c.Callbacks.DedupWindow)
	}
	_, err = config.Parse([]byte(forwardHead+"        - {name: a, to: http://a/, secret: 0123456789abcdef}\ncallbacks: {dedup_window: 1m}\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "callbacks.dedup_window: must be at least twice callbacks.max_skew") {
		t.Errorf("err = %v, want dedup_window refused", err)
	}
}
