package client_test

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/clienttest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestTicketAndJSSDK: the ticket source serves the fake's current ticket
// and is cached; JSSDK's signature checks out, computed here with sha1 as
// WeChat's JS-SDK documentation gives it, over the ticket the fake issued.
func TestTicketAndJSSDK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true})
		cnt, c := counted(t, srv)
		ts := c.TicketSource("oa", "jsapi")
		tk, err := ts.Ticket(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		info, ok := srv.Fake.TicketInfo(wxtest.TicketKey{Account: srv.Apps[0].AppID, Type: "jsapi"})
		if !ok || info.Value != tk || !time.Now().Before(info.Expires) {
			t.Fatalf("ticket %s; the fake's current: %+v", prefix(tk), info)
		}
		if again, _ := ts.Ticket(t.Context()); again != tk || cnt.count("GET /v1/tokens/oa/tickets/jsapi") != 1 {
			t.Fatalf("second read: %s, %d requests; want the cached ticket and 1", prefix(again), cnt.count("GET /v1/tokens/oa/tickets/jsapi"))
		}

		const page = "https://shop.example/pay?item=3&x=%E4%B8%AD"
		sg, err := c.JSSDK(t.Context(), "oa", page+"#frag")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum(fmt.Appendf(nil, "jsapi_ticket=%s&noncestr=%s&timestamp=%d&url=%s", tk, sg.NonceStr, sg.Timestamp, page))
		if sg.AppID != srv.Apps[0].AppID || sg.Signature != hex.EncodeToString(sum[:]) {
			t.Fatalf("signature %+v; want appId %s and sha1 %x", sg, srv.Apps[0].AppID, sum)
		}
		if _, err := c.JSSDK(t.Context(), "oa", ""); err == nil {
			t.Error("JSSDK with no URL: no error")
		}
		if _, err := c.JSSDK(t.Context(), "oa", "/relative"); err == nil {
			t.Error("JSSDK with a relative URL: no error")
		}
	})
}
