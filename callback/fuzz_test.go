package callback

import (
	"bytes"
	"encoding/xml"
	"testing"
)

// FuzzDecrypt feeds Decrypt arbitrary strings. It must never panic, every
// failure must be classified by a sentinel, and whatever it accepts must
// survive another Encrypt and Decrypt unchanged. Several seeds are accepted
// as they are, and mutations of their first block stay accepted (CBC
// malleability garbles only the ignored random prefix), so the accepting
// path is exercised as well as the failing ones.
func FuzzDecrypt(f *testing.F) {
	c := newCrypter(f, oaToken, oaKey, oaAppID)
	f.Add(oaEncrypt)
	f.Add(javaEncrypt)
	f.Add(weComEchostr)
	f.Add("")
	f.Add("====")
	f.Add("\r\n")
	for _, msg := range []string{"", "x", javaMsg, "<xml><Content>abcdteT</Content></xml>"} {
		enc, err := c.Encrypt([]byte(msg))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, encrypt string) {
		msg, err := c.Decrypt(encrypt)
		if err != nil {
			if !classified(err) {
				t.Fatalf("Decrypt(%q): unclassified error %v", encrypt, err)
			}
			return
		}
		again, err := c.Encrypt(msg)
		if err != nil {
			t.Fatalf("Encrypt(%q) after Decrypt accepted it: %v", msg, err)
		}
		got, err := c.Decrypt(again)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("Decrypt(Encrypt(%q)) = %q, %v", msg, got, err)
		}
	})
}

// FuzzDecryptMessage feeds DecryptMessage arbitrary bodies and query
// parameters, and ParseEvent the same bodies and whatever DecryptMessage
// returns. Nothing may panic, every failure must be classified, and an
// accepted body must carry a valid signature over its Encrypt element.
func FuzzDecryptMessage(f *testing.F) {
	c := newCrypter(f, oaToken, oaKey, oaAppID)
	f.Add([]byte(oaBody), oaMsgSignature, oaTimestamp, oaNonce)
	f.Add([]byte("<xml><Encrypt>"+weComEchostr+"</Encrypt></xml>"), weComMsgSignature, weComTimestamp, weComNonce)
	f.Add([]byte("<xml></xml>"), "", "", "")
	f.Add([]byte("<xml><Encrypt></Encrypt><Encrypt/></xml>"), oaMsgSignature, oaTimestamp, oaNonce)
	ticket := `<xml><AppId><![CDATA[` + oaAppID + `]]></AppId><CreateTime>1714037059</CreateTime>` +
		`<InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@0123]]></ComponentVerifyTicket></xml>`
	f.Add([]byte(ticket), "", "", "")
	for _, to := range []Recipient{{AppID: oaAppID}, {ToUserName: "gh_1", AgentID: "1"}} {
		body, sig, err := c.SealRequest(to, []byte(ticket), plainTimestamp, plainNonce)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, sig, plainTimestamp, plainNonce)
	}
	reply, err := c.EncryptMessage([]byte("<xml><Content>hi</Content></xml>"), oaTimestamp, oaNonce)
	if err != nil {
		f.Fatal(err)
	}
	var r replyIn
	if err := xml.Unmarshal(reply, &r); err != nil {
		f.Fatal(err)
	}
	f.Add(reply, r.MsgSignature, oaTimestamp, oaNonce)

	f.Fuzz(func(t *testing.T, body []byte, sig, timestamp, nonce string) {
		if _, err := ParseEvent(body); err != nil && !classified(err) {
			t.Fatalf("ParseEvent(%q): unclassified error %v", body, err)
		}
		plain, err := c.DecryptMessage(sig, timestamp, nonce, body)
		if err != nil {
			if !classified(err) {
				t.Fatalf("DecryptMessage: unclassified error %v", err)
			}
			return
		}
		var env requestIn
		if err := xml.Unmarshal(body, &env); err != nil || len(env.Encrypt) != 1 {
			t.Fatalf("accepted a body whose envelope does not parse to one Encrypt: %v", err)
		}
		if !VerifyMsgSignature(oaToken, timestamp, nonce, env.Encrypt[0], sig) {
			t.Fatalf("accepted a body whose signature does not verify")
		}
		if _, err := ParseEvent(plain); err != nil && !classified(err) {
			t.Fatalf("ParseEvent(%q): unclassified error %v", plain, err)
		}
	})
}
