package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/store/sealed"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestGatewayKill9 kills the binary (SIGKILL) three times while the
// destination is down and once while it delivers: every message WeChat
// was answered "success" for is delivered, in order per user. A kill
// between a destination's acknowledgement and the entry's removal may
// deliver a message again (at least once); the count is logged.
func TestGatewayKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the binary")
	}
	bin := buildBinary(t)
	fake, up := upstream(t, wxtest.Config{})
	fake.AddCorp(gwCorp, "corpsecret")
	q, bot := newSink(t), newSink(t)
	q.setDown(true)
	dir := t.TempDir()
	path := filepath.Join(dir, "wxtoken.yaml")
	os.WriteFile(path, []byte(gatewayYAML("data_dir: "+filepath.Join(dir, "data"), up, q.URL, bot.URL)), 0o600)
	const perRound = 20
	next := 1
	for round := range 4 {
		cmd, addr := startBinary(t, bin, path)
		plain, _, _ := targets(addr)
		pushMany(t, plain, next, perRound)
		next += perRound
		if round == 3 {
			q.setDown(false)
			for _, got := q.count(); got < 5; _, got = q.count() {
				time.Sleep(time.Millisecond) // killed while delivering
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	cmd, _ := startBinary(t, bin, path)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	dups := collect(t, q, next-1, true)
	t.Logf("%d messages delivered across 4 kills; %d delivered again", next-1, dups)
}

// TestGatewayCluster runs three instances on one Redis: pushes go to any
// of them while the destination is down, and once it is back each
// message is delivered once, by one instance, in order per user.
func TestGatewayCluster(t *testing.T) {
	rs := redistest.New(t, redistest.Options{})
	fake, up := upstream(t, wxtest.Config{})
	fake.AddCorp(gwCorp, "corpsecret")
	q, bot := newSink(t), newSink(t)
	q.setDown(true)
	yaml := gatewayYAML(fmt.Sprintf(`store: {type: redis, addrs: ["%s"]}`, rs.Addr()), up, q.URL, bot.URL)
	nodes := []*node{startNode(t, yaml), startNode(t, yaml), startNode(t, yaml)}
	const n = 60
	for i := 1; i <= n; i++ {
		plain, _, _ := targets(nodes[i%3].addr())
		pushMany(t, plain, i, 1)
	}
	for calls, _ := q.count(); calls < 10; calls, _ = q.count() {
		time.Sleep(10 * time.Millisecond)
	}
	q.setDown(false)
	collect(t, q, n, false)
	// Anything more would be a second delivery.
	plain, _, _ := targets(nodes[0].addr())
	pushMany(t, plain, n+1, 1)
	if rc := q.next(t); rc.ID != fmt.Sprint(n+1) {
		t.Errorf("delivered %s after all %d, want only %d", rc.raw, n, n+1)
	}
	if _, got := q.count(); got != n+1 {
		t.Errorf("destination acknowledged %d deliveries, want %d", got, n+1)
	}
}

// TestGatewayClusterKill9 runs three binaries on one Redis and kills one
// (SIGKILL) while they deliver: the others take over its lanes once its
// leases lapse, and every message is delivered, in order per user.
func TestGatewayClusterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a killed instance's leases")
	}
	bin := buildBinary(t)
	rs := redistest.New(t, redistest.Options{})
	fake, up := upstream(t, wxtest.Config{})
	fake.AddCorp(gwCorp, "corpsecret")
	q, bot := newSink(t), newSink(t)
	q.setDown(true)
	path := filepath.Join(t.TempDir(), "wxtoken.yaml")
	os.WriteFile(path, []byte(gatewayYAML(fmt.Sprintf(`store: {type: redis, addrs: ["%s"]}`, rs.Addr()), up, q.URL, bot.URL)), 0o600)
	var addrs []string
	var cmds []*exec.Cmd
	for range 3 {
		cmd, addr := startBinary(t, bin, path)
		cmds, addrs = append(cmds, cmd), append(addrs, addr)
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
	}
	const n = 45
	for i := 1; i <= n; i++ {
		plain, _, _ := targets(addrs[i%3])
		pushMany(t, plain, i, 1)
	}
	q.setDown(false)
	for _, got := q.count(); got < 5; _, got = q.count() {
		time.Sleep(time.Millisecond)
	}
	cmds[0].Process.Kill()
	dups := collect(t, q, n, true)
	t.Logf("%d messages delivered across a kill of one of three instances; %d delivered again", n, dups)
}

// TestGatewaySealed: with the store sealed at rest, the queue works the
// same, and the messages' content is not in the store file in clear.
func TestGatewaySealed(t *testing.T) {
	t.Setenv("WXTOKEN_MASTER_KEY", sealed.NewKey())
	fake, up := upstream(t, wxtest.Config{})
	fake.AddCorp(gwCorp, "corpsecret")
	q, bot := newSink(t), newSink(t)
	q.setDown(true)
	data := t.TempDir()
	m := runYAML(t, gatewayYAML("data_dir: "+data, up, q.URL, bot.URL))
	plain, _, _ := targets(m.Addr())
	const marker = "a-sealed-message-body"
	for i := 1; i <= 3; i++ {
		pushMany(t, plain, i, 1)
	}
	push(t, plain, wxtest.TextMessage("gh_1", "o_z", marker, 99, time.Now()))
	if raw, _ := os.ReadFile(filepath.Join(data, bolt.FileName)); bytes.Contains(raw, []byte(marker)) {
		t.Error("a queued message is in the store file in clear")
	}
	q.setDown(false)
	collect(t, q, 4, false)
}
