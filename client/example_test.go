package client_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/officialaccount"
	oaconfig "github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/util"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/clienttest"
)

// tokenHandle is silenceper/wechat's AccessTokenHandle (and its context
// variant) answered by a TokenSource.
type tokenHandle struct{ ts *client.TokenSource }

func (h tokenHandle) GetAccessToken() (string, error) {
	return h.ts.Token(context.Background())
}

func (h tokenHandle) GetAccessTokenContext(ctx context.Context) (string, error) {
	return h.ts.Token(ctx)
}

// ticketHandle is its JsTicketHandle, answered by a TicketSource.
type ticketHandle struct{ ts *client.TicketSource }

func (h ticketHandle) GetTicket(string) (string, error) { return h.ts.Ticket(context.Background()) }

// An Official Account of github.com/silenceper/wechat/v2 that takes its
// tokens and JS-SDK tickets from wxtoken, and never fetches one itself.
func Example_silenceperWechat() {
	srv, err := clienttest.New(clienttest.Options{}) // wxtoken and a fake WeChat
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	defer func(prev *http.Client) { util.DefaultHTTPClient = prev }(util.DefaultHTTPClient)
	util.DefaultHTTPClient = srv.FakeClient() // the SDK's calls go to the fake WeChat

	c, err := client.New(srv.URL, clienttest.Key)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	oa := officialaccount.NewOfficialAccount(&oaconfig.Config{
		AppID: srv.Apps[0].AppID, AppSecret: "held by wxtoken", Cache: cache.NewMemory()})
	oa.SetAccessTokenHandle(tokenHandle{c.TokenSource("oa")})
	js := oa.GetJs()
	js.SetJsTicketHandle(ticketHandle{c.TicketSource("oa", "jsapi")})

	ips, err := oa.GetBasic().GetCallbackIP()
	fmt.Println(ips, err)
	cfg, err := js.GetConfig("https://shop.example/pay")
	fmt.Println(cfg.AppID == srv.Apps[0].AppID, len(cfg.Signature), err)
	// Output:
	// [127.0.0.1] <nil>
	// true 40 <nil>
}
