package sandbox_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

const pdKey = "R0123456789abcdef0123456789abcde" // 32 characters

// pdTrigger is a valid trigger event, with dedup as its dedup_key when set.
func pdTrigger(dedup string) string {
	ev := map[string]any{"routing_key": pdKey, "event_action": "trigger",
		"payload": map[string]any{"summary": "CPU high on api-1", "source": "api-1.example.com", "severity": "critical",
			"timestamp": "2015-07-17T08:42:58.315+0000", "component": "api", "group": "prod", "class": "cpu",
			"custom_details": map[string]any{"p99": "2.3s"}},
		"links":  []map[string]string{{"href": "https://herald.example.com/triggers/1", "text": "Trigger"}},
		"images": []map[string]string{{"src": "https://herald.example.com/chart.png"}},
		"client": "herald", "client_url": "https://herald.example.com"}
	if dedup != "" {
		ev["dedup_key"] = dedup
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

// pdAnswer is a PagerDuty answer body.
type pdAnswer struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key"`
	Errors   []string `json:"errors"`
}

func pdPost(t *testing.T, b *bundle, body string) (answer, pdAnswer) {
	t.Helper()
	a := mustPost(t, b, "/v2/enqueue", body)
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	var out pdAnswer
	require.NoError(t, json.Unmarshal([]byte(a.body), &out), a.body)
	return a, out
}

func TestPagerDutyAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	a, out := pdPost(t, b, pdTrigger("trigger-7"))
	require.Equal(t, http.StatusAccepted, a.status)
	require.Equal(t, pdAnswer{Status: "success", Message: "Event processed", DedupKey: "trigger-7"}, out, "the dedup_key given is echoed")

	a, out = pdPost(t, b, pdTrigger(""))
	require.Equal(t, http.StatusAccepted, a.status)
	require.Regexp(t, `^[0-9a-f]{32}$`, out.DedupKey, "PagerDuty generates one")
	generated := out.DedupKey

	for _, action := range []string{"acknowledge", "resolve"} {
		a, out = pdPost(t, b, `{"routing_key":"`+pdKey+`","event_action":"`+action+`","dedup_key":"`+generated+`"}`)
		require.Equal(t, http.StatusAccepted, a.status, action)
		require.Equal(t, generated, out.DedupKey, action)
	}

	got := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.PagerDuty})
	require.Len(t, got, 4)
	ev := got[1].PagerDuty
	require.Equal(t, generated, ev.DedupKey, "the store has the key the event was processed under")
	require.Equal(t, "trigger", ev.EventAction)
	require.Equal(t, pdKey, ev.RoutingKey)
	require.Equal(t, "CPU high on api-1", ev.Payload.Summary)
	require.Equal(t, "critical", ev.Payload.Severity)
	require.JSONEq(t, `{"p99":"2.3s"}`, string(ev.Payload.CustomDetails))
	require.Equal(t, []sandbox.PagerDutyLink{{Href: "https://herald.example.com/triggers/1", Text: "Trigger"}}, ev.Links)
	require.Equal(t, "herald", ev.Client)
	require.True(t, got[1].Accepted)
	require.Equal(t, "resolve", got[3].PagerDuty.EventAction)
}

func TestPagerDutyInvalidEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	key := `"routing_key":"` + pdKey + `",`
	for body, want := range map[string][]string{
		`not json`:  {"Event object is not valid JSON"},
		`[1,2]`:     {"Event object is not valid JSON"},
		`{}`:        {"'routing_key' is missing or blank", "'event_action' is missing or blank"},
		"\xff\xfe{": {"Event object is not valid UTF-8"},
		`{"routing_key":"short","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info"}}`: {
			"Length of 'routing_key' is incorrect (should be 32 characters)"},
		`{` + key + `"event_action":"explode"}`: {
			"'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')"},
		`{` + key + `"event_action":"acknowledge"}`: {"'dedup_key' is missing or blank"},
		`{` + key + `"event_action":"resolve","dedup_key":"` + strings.Repeat("k", 256) + `"}`: {
			"Length of 'dedup_key' is incorrect (should be at most 255 characters)"},
		`{` + key + `"event_action":"trigger"}`: {"'payload' is missing or blank"},
		`{` + key + `"event_action":"trigger","payload":{}}`: {"'payload.summary' is missing or blank",
			"'payload.source' is missing or blank", "'payload.severity' is missing or blank"},
		`{` + key + `"event_action":"trigger","payload":{"summary":"` + strings.Repeat("s", 1025) + `","source":"h","severity":"fatal","timestamp":"yesterday"}}`: {
			"Length of 'payload.summary' is incorrect (should be at most 1024 characters)",
			"'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')",
			"'payload.timestamp' is invalid (must be an ISO 8601 timestamp)"},
		`{` + key + `"event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info"},"links":[{"text":"t"}],"images":[{"alt":"a"}]}`: {
			"'links[0].href' is missing or blank", "'images[0].src' is missing or blank"},
	} {
		a, out := pdPost(t, b, body)
		require.Equal(t, http.StatusBadRequest, a.status, body)
		require.Equal(t, pdAnswer{Status: "invalid event", Message: "Event object is invalid", Errors: want}, out, body)
	}
	a, _ := pdPost(t, b, `{`+key+`"event_action":"trigger","payload":{"summary":"`+strings.Repeat("x", 1024)+`","source":"h","severity":"info","timestamp":"2026-11-24T12:00:00Z"}}`)
	require.Equal(t, http.StatusAccepted, a.status, "1024 characters is the documented maximum")

	a, _ = pdPost(t, b, `{`+key+`"event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info","custom_details":{"blob":"`+strings.Repeat("x", 512<<10)+`"}}}`)
	require.Equal(t, http.StatusBadRequest, a.status, "events are limited to 512 KB")

	for _, n := range b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.PagerDuty}) {
		if n.Answer.Status == http.StatusBadRequest {
			require.False(t, n.Accepted)
		}
	}
}

func TestPagerDutyThrottledAndFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.PagerDuty: {PerSecond: 2, Burst: 1}}
	})
	throttled := pdAnswer{Status: "throttle event", Message: "Requests for this service are arriving too quickly. Please retry later."}
	a, _ := pdPost(t, b, pdTrigger("a"))
	require.Equal(t, http.StatusAccepted, a.status)
	a, out := pdPost(t, b, pdTrigger("b"))
	require.Equal(t, http.StatusTooManyRequests, a.status, "the limit is per routing key")
	require.Equal(t, throttled, out)
	b.clock.Advance(500 * time.Millisecond)
	a, _ = pdPost(t, b, pdTrigger("c"))
	require.Equal(t, http.StatusAccepted, a.status)
	require.NoError(t, b.sb.SetLimit(sandbox.PagerDuty, sandbox.Rate{}))

	for status, want := range map[int]pdAnswer{
		400: {Status: "invalid event", Message: "Event object is invalid", Errors: []string{"Event object is invalid"}},
		429: throttled,
		500: {Status: "error", Message: "Internal Server Error"},
		503: {Status: "error", Message: "Service Unavailable"},
	} {
		_, err := b.sb.AddFault(sandbox.Fault{Partner: sandbox.PagerDuty, Kind: sandbox.FaultStatus, Status: status, Times: 1})
		require.NoError(t, err)
		a, out := pdPost(t, b, pdTrigger("d"))
		require.Equal(t, status, a.status)
		require.Equal(t, want, out, status)
	}

	_, err := b.sb.AddFault(sandbox.Fault{Partner: sandbox.PagerDuty, Kind: sandbox.FaultDropConnection, Times: 1})
	require.NoError(t, err)
	_, err = post(t, b, http.DefaultClient, "/v2/enqueue", pdTrigger("lost-answer"))
	require.Error(t, err)
	var last sandbox.Notification
	require.Eventually(t, func() bool { // the answer is recorded as the handler ends
		got := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.PagerDuty})
		last = got[len(got)-1]
		return last.Answer != nil
	}, 5*time.Second, 5*time.Millisecond)
	require.True(t, last.Accepted, "PagerDuty processed the event; only the answer was lost")
	require.True(t, last.Answer.Dropped)
	require.Equal(t, "lost-answer", last.PagerDuty.DedupKey)

	_, err = b.sb.AddFault(sandbox.Fault{Partner: sandbox.PagerDuty, Kind: sandbox.FaultEmptyBody, Times: 1})
	require.NoError(t, err)
	a = mustPost(t, b, "/v2/enqueue", pdTrigger("e"))
	require.Equal(t, http.StatusAccepted, a.status)
	require.Empty(t, a.body, "202 with no dedup_key to read")
}

// FuzzPagerDutyEvent: any body gets problems or an event without a panic,
// and an event built from any summary, source and dedup key within the
// documented limits is accepted as sent.
func FuzzPagerDutyEvent(f *testing.F) {
	f.Add([]byte(pdTrigger("k")), "CPU high", "api-1", "k-1", uint8(0))
	f.Add([]byte(`{"routing_key":1}`), "s", "h", "", uint8(1))
	f.Add([]byte(`{"payload":null,"links":[null],"images":{}}`), "s", "h", "", uint8(2))
	f.Add([]byte(`{"event_action":"resolve","dedup_key":""}`), "s", "h", "d", uint8(3))
	f.Fuzz(func(t *testing.T, body []byte, summary, source, dedup string, sev uint8) {
		ev, errs := sandbox.ParsePagerDutyEventForTest(body)
		if ev == nil && len(errs) == 0 {
			t.Fatalf("no event and no problem for %q", body)
		}
		summary, source, dedup = strings.ToValidUTF8(summary, "?"), strings.ToValidUTF8(source, "?"), strings.ToValidUTF8(dedup, "?")
		if summary == "" || source == "" || utf8.RuneCountInString(summary) > 1024 || utf8.RuneCountInString(dedup) > 255 {
			return
		}
		severity := []string{"critical", "error", "warning", "info"}[sev%4]
		valid, err := json.Marshal(map[string]any{"routing_key": pdKey, "event_action": "trigger", "dedup_key": dedup,
			"payload": map[string]any{"summary": summary, "source": source, "severity": severity, "custom_details": map[string]string{"s": summary}}})
		if err != nil {
			t.Fatal(err)
		}
		ev, errs = sandbox.ParsePagerDutyEventForTest(valid)
		if len(errs) > 0 {
			t.Fatalf("refused a valid event %s: %v", valid, errs)
		}
		if ev.Payload.Summary != summary || ev.Payload.Source != source || ev.DedupKey != dedup || ev.Payload.Severity != severity {
			t.Fatalf("event %s came back as %+v", valid, ev)
		}
	})
}
