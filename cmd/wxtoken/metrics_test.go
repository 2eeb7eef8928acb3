package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxtoken/wxtoken/wxtest"
)

// scrape reads url's metrics.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams, string(b)
}

// value is the gauge or counter of family with the given labels.
func value(fams map[string]*dto.MetricFamily, family string, labels ...string) (float64, bool) {
	f := fams[family]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		if m.Gauge != nil {
			return m.Gauge.GetValue(), true
		}
		return m.Counter.GetValue(), true
	}
	return 0, false
}

// TestMetrics: /metrics shows each configured credential on its own and
// a platform's authorizers as one aggregate, counts fetches and reports,
// and holds no token; with metrics.listen it moves to its own listener.
func TestMetrics(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	m := runYAML(t, platformYAML(t.TempDir(), srv.URL)+
		"  - {name: importer, key: "+importerKey+", allow: [plat, plat/*], import: [plat]}\n")
	addr := m.Addr()
	fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", nil)
	getToken(t, addr, "plat")
	const n = 40
	var list []string
	for i := range n {
		appid := fmt.Sprintf("wxauth%04d", i)
		refresh, err := fake.Grant(platformComp.AppID, appid)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, fmt.Sprintf(`{"authorizer_appid":%q,"authorizer_refresh_token":%q}`, appid, refresh))
	}
	if status, body := importCall(t, addr, importerKey, `{"authorizers":[`+strings.Join(list, ",")+`]}`); status != 200 {
		t.Fatalf("import: %d %s", status, body)
	}
	for i := range n {
		getToken(t, addr, fmt.Sprintf("plat/wxauth%04d", i))
	}
	tok := getToken(t, addr, "plat/wxauth0000").AccessToken
	fake.Expire("wxauth0000")
	invalidate(t, addr, "plat/wxauth0000", tok)

	// A request without a key, one for no route, and a watch stream
	// open while the metrics are read.
	if resp, err := http.Get("http://" + addr + "/v1/tokens/plat"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("GET without a key: %v %v, want 401", resp, err)
	}
	if status, _ := keyCall(t, addr, "GET", "/v1/nowhere", clientKey, ""); status != 404 {
		t.Fatalf("GET /v1/nowhere: %d, want 404", status)
	}
	closeWatch := openWatch(t, addr, "plat")
	fams, text := scrape(t, "http://"+addr+"/metrics")
	closeWatch()
	for _, tt := range []struct {
		family string
		labels []string
		min    float64 // at least: a read may be retried while not ready
	}{
		{"wxtoken_api_requests_total", []string{"route", "GET /v1/tokens/{id}", "status", "200", "client", "e2e"}, 1},
		{"wxtoken_api_requests_total", []string{"route", "GET /v1/tokens/{ns}/{id}", "status", "200", "client", "e2e"}, n + 1},
		{"wxtoken_api_requests_total", []string{"route", "GET /v1/tokens/{id}", "status", "401", "client", ""}, 1},
		{"wxtoken_api_requests_total", []string{"route", "unmatched", "status", "404", "client", "e2e"}, 1},
		{"wxtoken_api_requests_total", []string{"route", "POST /v1/components/{id}/authorizers", "status", "200", "client", "importer"}, 1},
		{"wxtoken_api_requests_total", []string{"route", "POST /v1/tokens/{ns}/{id}/invalidate", "status", "200", "client", "e2e"}, 1},
		{"wxtoken_token_reads_total", []string{"client", "e2e", "credential", "plat"}, 1},
		{"wxtoken_token_reads_total", []string{"client", "e2e", "credential", "plat/*"}, n + 1},
		{"wxtoken_store_operations_total", []string{"op", "put", "result", "ok"}, n + 1},
		{"wxtoken_store_operations_total", []string{"op", "load", "result", "ok"}, 1},
		{"wxtoken_watch_streams", nil, 1},
		{"wxtoken_watch_events_total", nil, n + 1},
	} {
		if v, ok := value(fams, tt.family, tt.labels...); !ok || v < tt.min {
			t.Errorf("%s%q = %v, %v; want at least %v", tt.family, tt.labels, v, ok, tt.min)
		}
	}
	if v, ok := value(fams, "wxtoken_token_reads_total", "client", "e2e", "credential", "plat/*"); ok && v > n+1+10 {
		t.Errorf("plat/* reads counted %v, more than were made", v)
	}
	if v, ok := value(fams, "wxtoken_credential_valid", "credential", "plat", "kind", "component"); !ok || v != 1 {
		t.Errorf("wxtoken_credential_valid of plat = %v, %v; want 1", v, ok)
	}
	if v, ok := value(fams, "wxtoken_credential_expires_in_seconds", "credential", "plat"); !ok || v <= 0 || v > 7200 {
		t.Errorf("plat expires in %v s, want within (0, 7200]", v)
	}
	if v, ok := value(fams, "wxtoken_owned_credentials", "owner", "plat", "kind", "authorizer"); v != n {
		t.Errorf("wxtoken_owned_credentials of plat's authorizers = %v, %v; want %d", v, ok, n)
	}
	if v, ok := value(fams, "wxtoken_owned_invalid", "owner", "plat", "kind", "authorizer"); !ok || v != 0 {
		t.Errorf("wxtoken_owned_invalid = %v, %v; want 0", v, ok)
	}
	if v, ok := value(fams, "wxtoken_owned_min_expires_in_seconds", "owner", "plat", "kind", "authorizer"); !ok || v <= 0 {
		t.Errorf("wxtoken_owned_min_expires_in_seconds = %v, %v; want > 0", v, ok)
	}
	if strings.Contains(text, "wxauth0001") {
		t.Error("an authorizer has series of its own")
	}
	if v, _ := value(fams, "wxtoken_fetches_total", "kind", "authorizer", "result", "ok"); v < n+1 {
		t.Errorf("authorizer fetches counted: %v, want at least %d", v, n+1)
	}
	if v, _ := value(fams, "wxtoken_reports_total", "kind", "authorizer", "result", "refreshed"); v != 1 {
		t.Errorf("reports counted refreshed: %v, want 1", v)
	}
	if _, ok := value(fams, "process_resident_memory_bytes"); !ok {
		t.Error("no process_resident_memory_bytes")
	}
	if v, ok := value(fams, "wxtoken_store_up"); !ok || v != 1 {
		t.Errorf("wxtoken_store_up = %v, %v; want 1", v, ok)
	}
	if v, ok := value(fams, "wxtoken_upstream_healthy", "url", srv.URL); !ok || v != 1 {
		t.Errorf("wxtoken_upstream_healthy of %s = %v, %v; want 1", srv.URL, v, ok)
	}
	if v, ok := value(fams, "wxtoken_component_ticket_age_seconds", "credential", "plat"); !ok || v < 0 || v > 600 {
		t.Errorf("plat's ticket is %v s old (%v), want a fresh one", v, ok)
	}
	// What operators deploy names only metrics wxtoken exposes.
	for _, file := range []string{"../../deploy/prometheus/alerts.yml", "../../deploy/grafana/wxtoken.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`\b(?:wxtoken|process|go)_[a-z_]+`).FindAllString(string(b), -1)
		if len(names) == 0 {
			t.Errorf("%s names no metric", file)
		}
		for _, name := range names {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if fams[name] == nil && fams[base] == nil {
				t.Errorf("%s uses %s, which wxtoken does not expose", file, name)
			}
		}
	}
	for _, secret := range []string{tok, platformComp.Secret, getToken(t, addr, "plat").AccessToken} {
		if strings.Contains(text, secret) {
			t.Errorf("the metrics show a token or secret: %.12s…", secret)
		}
	}
}

// TestMetricsListen: with metrics.listen, /metrics is served there and not
// on the API's listener.
func TestMetricsListen(t *testing.T) {
	_, up := upstream(t, wxtest.Config{})
	yaml := strings.Replace(configYAML(t.TempDir(), "127.0.0.1:0", up, time.Minute), "clients:", "metrics: {listen: 127.0.0.1:0}\nclients:", 1)
	yaml = strings.ReplaceAll(yaml, "${WX1_SECRET}", "secret1")
	yaml = strings.ReplaceAll(yaml, "${WX2_SECRET}", "secret2")
	m := runYAML(t, yaml)
	if m.metrics == nil {
		t.Fatal("no metrics listener")
	}
	getToken(t, m.Addr(), "wx1")
	fams, _ := scrape(t, "http://"+m.metrics.addr+"/metrics")
	if v, ok := value(fams, "wxtoken_credential_valid", "credential", "wx1"); !ok || v != 1 {
		t.Errorf("wx1 valid = %v, %v on the metrics listener", v, ok)
	}
	if resp, err := http.Get("http://" + m.Addr() + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /metrics on the API listener: %v %v, want 404", resp.StatusCode, err)
	}
}

// openWatch opens a watch stream of id on addr and reads its first event;
// the returned func ends it.
func openWatch(t *testing.T, addr, id string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/watch?ids="+id, nil)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("watch %s: %d", id, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: ") {
	}
	return func() { cancel(); resp.Body.Close() }
}

// TestMetricsManyAuthorizers: 10,000 authorizers, each read, by its
// namespaced id and by its bare appid, and ids that do not exist asked
// too, add no series of their own to the API's metrics: requests are
// counted by route pattern, reads of all of a platform's authorizers as
// one credential.
func TestMetricsManyAuthorizers(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 10,000 authorizers")
	}
	const n, batch = 10_000, 1_000
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	m := runYAML(t, platformYAML(t.TempDir(), srv.URL)+
		"  - {name: importer, key: "+importerKey+", allow: [plat, plat/*], import: [plat]}\n")
	addr := m.Addr()
	fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", nil)
	getToken(t, addr, "plat")
	appid := func(i int) string { return fmt.Sprintf("wxmany%05d", i) }
	for start := 0; start < n; start += batch {
		var list []string
		for i := start; i < start+batch; i++ {
			refresh, err := fake.Grant(platformComp.AppID, appid(i))
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, fmt.Sprintf(`{"authorizer_appid":%q,"authorizer_refresh_token":%q}`, appid(i), refresh))
		}
		if status, body := importCall(t, addr, importerKey, `{"authorizers":[`+strings.Join(list, ",")+`]}`); status != 200 {
			t.Fatalf("import: %d %.200s", status, body)
		}
	}
	for i := range n {
		id := "plat/" + appid(i)
		if i%2 == 1 {
			id = appid(i) // the bare appid: one segment, the other route
		}
		getToken(t, addr, id)
	}
	for i := range 100 {
		if status, _ := keyCall(t, addr, "GET", "/v1/tokens/plat/wxnone"+strconv.Itoa(i), clientKey, ""); status != 403 {
			// 403, not 404: a client may not probe for ids it was not allowed.
			t.Fatalf("an unknown authorizer: %d, want 403", status)
		}
	}

	fams, text := scrape(t, "http://"+addr+"/metrics")
	if strings.Contains(text, "wxmany") || strings.Contains(text, "wxnone") {
		t.Error("an authorizer, or an unknown id, has series of its own")
	}
	// Routes × statuses × clients that this test used: a handful, and
	// the same for any n.
	for family, most := range map[string]int{
		"wxtoken_api_requests_total":           10,
		"wxtoken_api_request_duration_seconds": 5,
		"wxtoken_token_reads_total":            2, // plat, plat/*
	} {
		if got := len(fams[family].GetMetric()); got == 0 || got > most {
			t.Errorf("%s has %d series, want 1 to %d", family, got, most)
		}
	}
	if v, _ := value(fams, "wxtoken_token_reads_total", "client", "e2e", "credential", "plat/*"); v != n {
		t.Errorf("authorizer reads counted %v, want %d", v, n)
	}
	if v, _ := value(fams, "wxtoken_api_requests_total", "route", "GET /v1/tokens/{ns}/{id}", "status", "403", "client", "e2e"); v != 100 {
		t.Errorf("unknown authorizers' 403s counted %v, want 100", v)
	}
}

// TestMetricsAPIOff: with metrics.api false the API's requests are not
// counted; the rest of the metrics are.
func TestMetricsAPIOff(t *testing.T) {
	_, up := upstream(t, wxtest.Config{})
	yaml := strings.Replace(configYAML(t.TempDir(), "127.0.0.1:0", up, time.Minute), "clients:", "metrics: {api: false}\nclients:", 1)
	yaml = strings.ReplaceAll(yaml, "${WX1_SECRET}", "secret1")
	yaml = strings.ReplaceAll(yaml, "${WX2_SECRET}", "secret2")
	m := runYAML(t, yaml)
	getToken(t, m.Addr(), "wx1")
	fams, _ := scrape(t, "http://"+m.Addr()+"/metrics")
	for _, family := range []string{"wxtoken_api_requests_total", "wxtoken_api_request_duration_seconds", "wxtoken_token_reads_total", "wxtoken_watch_events_total"} {
		if fams[family] != nil {
			t.Errorf("%s exposed with metrics.api false", family)
		}
	}
	if v, ok := value(fams, "wxtoken_store_operations_total", "op", "put", "result", "ok"); !ok || v == 0 {
		t.Errorf("store puts = %v, %v; want counted", v, ok)
	}
}
