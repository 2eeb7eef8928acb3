package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

type deadLetter struct {
	ID         string `json:"id"`
	Credential string `json:"credential"`
	Rule       string `json:"rule"`
	MessageID  string `json:"message_id"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"last_error"`
}

// TestGatewayDeadLetters: messages a destination refuses past
// callbacks.dead_after are listed by the admin API, and an operator
// re-drives them to the destination once it is back.
func TestGatewayDeadLetters(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	fake.AddCorp(gwCorp, "corpsecret")
	q, bot := newSink(t), newSink(t)
	q.setDown(true)
	yaml := strings.Replace(gatewayYAML("data_dir: "+t.TempDir(), up, q.URL, bot.URL),
		"callbacks: {max_backoff: 100ms}", "callbacks: {max_backoff: 100ms, dead_after: 300ms}", 1) + adminsYAML
	m := runYAML(t, yaml)
	plain, _, _ := targets(m.Addr())
	pushMany(t, plain, 1, 4)

	list := func(key string) []deadLetter {
		var out struct {
			DeadLetters []deadLetter `json:"dead_letters"`
		}
		if status := adminCall(t, m.Addr(), "GET", "/v1/admin/deadletters", key, "", &out); status != http.StatusOK {
			t.Fatalf("list dead letters: %d", status)
		}
		return out.DeadLetters
	}
	var dead []deadLetter
	for end := time.Now().Add(20 * time.Second); len(dead) < 4; dead = list(viewerKey) {
		if time.Now().After(end) {
			t.Fatalf("dead letters = %+v, want 4", dead)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range dead {
		if d.Credential != "plain-oa" || d.Rule != "all" || d.MessageID == "" || d.Attempts < 1 || !strings.Contains(d.LastError, "503") {
			t.Errorf("dead letter = %+v", d)
		}
	}
	if status, text := keyCall(t, m.Addr(), "GET", "/v1/admin/deadletters", viewerKey, ""); strings.Contains(text, qSecret) || status != 200 {
		t.Errorf("dead letters answered %d with the rule's secret", status)
	}
	if status := adminCall(t, m.Addr(), "POST", "/v1/admin/deadletters/"+dead[0].ID+"/redrive", viewerKey, "", nil); status != http.StatusForbidden {
		t.Errorf("viewer re-drive: %d, want 403", status)
	}
	if status := adminCall(t, m.Addr(), "POST", "/v1/admin/deadletters/nope/redrive", opsKey, "", nil); status != http.StatusNotFound {
		t.Errorf("re-drive of an unknown id: %d, want 404", status)
	}
	if _, got := q.count(); got != 0 {
		t.Fatalf("destination took %d while down", got)
	}
	q.setDown(false)
	for _, d := range dead {
		if status := adminCall(t, m.Addr(), "POST", "/v1/admin/deadletters/"+d.ID+"/redrive", opsKey, "", nil); status != http.StatusOK {
			t.Errorf("re-drive %s: %d", d.ID, status)
		}
	}
	collect(t, q, 4, false)
	if left := list(viewerKey); len(left) != 0 {
		t.Errorf("dead letters after re-drive: %+v", left)
	}
}
