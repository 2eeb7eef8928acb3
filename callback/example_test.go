package callback_test

import (
	"fmt"
	"log"

	"github.com/wxtoken/wxtoken/callback"
)

// An Official Account in plain mode checks the signature on WeChat's GET and,
// if it holds, answers the echostr parameter unchanged.
func ExampleVerifySignature() {
	const token, timestamp, nonce = "AAAAA", "1714037059", "486452656"
	signature := "899cf89e464efb63f54ddac96b0a0a235f53aa78" // from the query string

	fmt.Println(callback.VerifySignature(token, timestamp, nonce, signature))
	fmt.Println(callback.Signature(token, timestamp, nonce))
	// Output:
	// true
	// 899cf89e464efb63f54ddac96b0a0a235f53aa78
}

// WeCom verifies a callback URL with an encrypted echostr; the handler
// answers with the plaintext and nothing else.
func ExampleCrypter_VerifyURL() {
	c, err := callback.NewCrypter("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
	if err != nil {
		log.Fatal(err)
	}
	// The query values of GET ?msg_signature=..&timestamp=..&nonce=..&echostr=..
	echo, err := c.VerifyURL(
		"5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
		"1409659589",
		"263014780",
		"P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", echo)
	// Output: 1616140317555161061
}

// A fake WeChat pushes a component_verify_ticket the way the real one does,
// and the token server opens it. Both sides share the token, the
// EncodingAESKey and the component appid.
func ExampleCrypter_SealRequest() {
	const (
		token          = "spamtest"
		encodingAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
		componentAppID = "wx0123456789abcdef"
	)
	wechat, err := callback.NewCrypter(token, encodingAESKey, componentAppID)
	if err != nil {
		log.Fatal(err)
	}
	push := []byte(`<xml><AppId><![CDATA[wx0123456789abcdef]]></AppId><CreateTime>1714037059</CreateTime>` +
		`<InfoType><![CDATA[component_verify_ticket]]></InfoType>` +
		`<ComponentVerifyTicket><![CDATA[ticket@@@example]]></ComponentVerifyTicket></xml>`)
	body, msgSignature, err := wechat.SealRequest(callback.Recipient{AppID: componentAppID}, push, "1714037059", "486452656")
	if err != nil {
		log.Fatal(err)
	}

	// The server side: msgSignature, timestamp and nonce arrive in the URL.
	server, err := callback.NewCrypter(token, encodingAESKey, componentAppID)
	if err != nil {
		log.Fatal(err)
	}
	plain, err := server.DecryptMessage(msgSignature, "1714037059", "486452656", body)
	if err != nil {
		log.Fatal(err)
	}
	ev, err := callback.ParseEvent(plain)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.InfoType, ev.ComponentVerifyTicket, ev.CreateTime)
	// Output: component_verify_ticket ticket@@@example 1714037059
}
