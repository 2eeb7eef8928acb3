package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// cached is a reply given to a message, kept for WeChat's retries.
type cached struct {
	At  time.Time `json:"at"`
	XML []byte    `json:"xml"`
}

func replyKey(credential string, m Message) string {
	return replyPrefix + credential + "/" + digest(m.key())
}

// askReply POSTs m to the reply rule and returns its answer: a 200 whose
// body is neither empty nor "success" is the plain reply XML. Anything
// else, a timeout included, is no reply: WeChat is answered "success"
// and must not retry a reply that cannot be given.
func (g *Gateway) askReply(ctx context.Context, credential string, r Rule, m Message, now time.Time) []byte {
	b, err := body(credential, m, now)
	if err != nil {
		return nil
	}
	status, answer, err := g.send(ctx, r, source(credential, m.Authorizer), rand.Text(), b)
	if err != nil || status != 200 {
		g.log.Warn("gateway: no reply from the reply rule; answering success", "credential", credential, "rule", r.Name, "id", m.ID, "status", status, "err", err)
		g.count.replies.WithLabelValues(credential, "none").Inc()
		return nil
	}
	answer = bytes.TrimSpace(answer)
	if len(answer) == 0 || string(answer) == "success" {
		g.count.replies.WithLabelValues(credential, "none").Inc()
		return nil
	}
	g.count.replies.WithLabelValues(credential, "reply").Inc()
	if v, err := json.Marshal(cached{At: now, XML: answer}); err == nil {
		// Best effort: without it, a retry is answered "success".
		if _, err := g.st.Put(ctx, replyKey(credential, m), v, 0); err != nil && !errors.Is(err, store.ErrConflict) {
			g.log.Warn("gateway: reply not kept for WeChat's retries", "credential", credential, "id", m.ID, "err", err)
		}
	}
	return answer
}

// cachedReply is the reply given to the message within the dedup window,
// nil if none.
func (g *Gateway) cachedReply(ctx context.Context, credential string, m Message) []byte {
	e, err := g.st.Get(ctx, replyKey(credential, m))
	if err != nil {
		return nil
	}
	var c cached
	if json.Unmarshal(e.Value, &c) != nil || g.cfg.Now().Sub(c.At) > g.cfg.DedupWindow {
		return nil
	}
	return c.XML
}

// collectReplies drops the replies older than the dedup window.
func (g *Gateway) collectReplies(ctx context.Context) {
	list, err := g.st.Load(ctx, replyPrefix)
	if err != nil {
		return
	}
	now := g.cfg.Now()
	for _, ke := range list {
		var c cached
		if json.Unmarshal(ke.Value, &c) != nil || now.Sub(c.At) > g.cfg.DedupWindow {
			g.st.Delete(ctx, ke.Key, ke.Version)
		}
	}
}
