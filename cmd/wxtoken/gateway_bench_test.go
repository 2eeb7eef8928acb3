package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// dropApp is an Official Account whose callback forwards nothing: the
// baseline a push costs without the gateway.
const dropApp = "wx0000000000000004"

// BenchmarkGateway pushes b.N plain-mode messages from 16 concurrent
// WeChat connections, spread over 64 users, to one queue destination, on
// the embedded store and on Redis. It reports messages accepted per
// second (WeChat answered), delivered per second (until the last
// delivery was acknowledged), and the median and 99th-percentile time
// WeChat waits for its answer, beside the same for a callback that
// forwards nothing.
//
//	go test -run ^$ -bench BenchmarkGateway -benchtime 2000x ./cmd/wxtoken
func BenchmarkGateway(b *testing.B) {
	b.Run("bolt", func(b *testing.B) { benchGateway(b, "data_dir: "+b.TempDir()) })
	b.Run("redis", func(b *testing.B) {
		rs := redistest.New(b, redistest.Options{})
		benchGateway(b, fmt.Sprintf(`store: {type: redis, addrs: ["%s"]}`, rs.Addr()))
	})
}

func benchGateway(b *testing.B, storage string) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp(app1, "secret1")
	fake.AddApp(app2, "secret2")
	fake.AddApp(dropApp, "secret3")
	fake.AddCorp(gwCorp, "corpsecret")
	up := httptest.NewServer(fake)
	defer up.Close()
	var delivered atomic.Int64
	var last atomic.Int64
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivered.Add(1)
		last.Store(time.Now().UnixNano())
	}))
	defer dest.Close()
	yaml := gatewayYAML(storage, up.URL, dest.URL, dest.URL)
	yaml = strings.Replace(yaml, "clients:", `  - id: drop-oa
    kind: mp
    appid: `+dropApp+`
    secret: secret3
    mode: classic
    callback: {token: droptoken}
clients:`, 1)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	plain, _, _ := targets(m.Addr())
	drop := wxtest.MessageTarget{URL: "http://" + m.Addr() + "/callback/mp/drop-oa", Token: "droptoken", ReceiveID: dropApp}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	plain.Client, drop.Client = client, client

	run := func(target wxtest.MessageTarget, n int, base int64) []time.Duration {
		var mu sync.Mutex
		var lat []time.Duration
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					msg := wxtest.TextMessage("gh_1", fmt.Sprintf("o_%d", i%64), "bench", base+i, time.Now())
					start := time.Now()
					a, err := wxtest.PushMessage(b.Context(), target, msg)
					d := time.Since(start)
					if err != nil || a.Status != 200 || a.Attempts != 1 {
						b.Errorf("push %d: %d attempts, %d %q, %v", i, a.Attempts, a.Status, a.Body, err)
						return
					}
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		return lat
	}
	pct := func(lat []time.Duration, p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000
	}

	baseline := run(drop, min(b.N, 2000), 1<<40)
	b.ResetTimer()
	start := time.Now()
	lat := run(plain, b.N, 0)
	accepted := time.Since(start)
	for delivered.Load() < int64(b.N) {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("delivered %d of %d in 5 minutes", delivered.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	deliveredIn := time.Duration(last.Load() - start.UnixNano())
	b.StopTimer()
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(b.N)/deliveredIn.Seconds(), "delivered/s")
	b.ReportMetric(pct(lat, 0.5), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	b.ReportMetric(pct(baseline, 0.5), "p50-ms-unforwarded")
	b.ReportMetric(pct(baseline, 0.99), "p99-ms-unforwarded")
}
