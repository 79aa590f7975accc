package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"herald/notify"
)

// The web UI driven through headless Chromium against the real program:
// each step waits on what the page shows, and every page visited is saved
// as a full-page screenshot for a person to look at. Without Chromium the
// test is skipped, unless HERALD_REQUIRE_CHROMIUM=1 (CI) makes that a
// failure. HERALD_SCREENSHOTS names the screenshots' folder; it defaults
// to ui-screenshots at the repository root.
func TestBrowserUI(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	h := startServe(t, map[string]string{}, "--data-dir", t.TempDir())
	b := newBrowser(t, exe, h.url)

	// Events, a trigger over them due to be evaluated while the
	// deliveries below travel, and an SLO over a derived column.
	events := make([]map[string]any, 5)
	for i := range events {
		events[i] = map[string]any{"data": map[string]any{"name": "checkout", "duration_ms": 120 + 100*i}}
	}
	// Two hours of earlier checkouts, one in 25 slow, give the SLO a
	// history to draw.
	for i := range 240 {
		ms := 150
		if i%25 == 3 {
			ms = 900
		}
		events = append(events, map[string]any{"time": time.Now().Add(-2*time.Hour + time.Duration(i)*29*time.Second).UTC().Format(time.RFC3339),
			"data": map[string]any{"name": "checkout", "duration_ms": ms}})
	}
	status, _ := h.do(t, "POST", "/1/batch/checkout", events)
	require.Equal(t, http.StatusOK, status)
	triggerID, evaluatedAt := dueTrigger(t, h, "checkout", 6*time.Second, 16*time.Second)
	status, dc := h.do(t, "POST", "/1/derived_columns/checkout", map[string]any{
		"alias": "sli.fast_checkout", "expression": `IF(EQUALS($name, "checkout"), LTE($duration_ms, 300))`})
	require.Equal(t, http.StatusCreated, status, "%v", dc)
	status, o := h.do(t, "POST", "/1/slos/checkout", map[string]any{
		"name": "Checkout under 300 ms", "sli": map[string]any{"alias": "sli.fast_checkout"},
		"time_period_days": 30, "target_per_million": 990000})
	require.Equal(t, http.StatusCreated, status, "%v", o)

	t.Run("sign in", func(t *testing.T) {
		b.t = t
		b.visit("/ui/")
		b.waitVisible(heading(1, "Sign in to herald"))
		require.Contains(t, b.location(), "/ui/signin?next=", "a signed-out visit is sent to sign in")
		b.shot("signin")
		b.checkAccessible("sign-in")

		// Wrong key: the error, on the same form.
		b.do(chromedp.SendKeys(chromedp.Search(labelled("API key")), "hcxck_not-a-key\r"))
		b.waitVisible(text("That key is unknown or revoked."))
		b.shot("signin-wrong-key")

		// The right key, by keyboard alone: Tab from the top of the page to
		// the key field, type, Enter.
		b.do(chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
		for i := 0; ; i++ {
			require.Less(t, i, 10, "the API key field is not reachable with Tab")
			b.do(chromedp.KeyEvent(kb.Tab))
			if b.eval(`[...(document.activeElement.labels || [])].some(l => l.textContent.trim() === "API key")`) {
				break
			}
		}
		b.do(chromedp.KeyEvent(h.key), chromedp.KeyEvent(kb.Enter))
		b.waitVisible(heading(1, "Overview"))
		require.True(t, strings.HasSuffix(b.location(), "/ui/"), b.location())
	})
	if t.Failed() {
		return
	}

	triggerPage := "/ui/triggers/checkout/" + triggerID
	t.Run("trigger before its first evaluation", func(t *testing.T) {
		b.t = t
		if !time.Now().Before(evaluatedAt.Add(-time.Second)) {
			t.Skip("the trigger was evaluated already")
		}
		b.visit(triggerPage)
		b.waitVisible(heading(1, "Checkout traffic"))
		b.waitVisible(text("Not evaluated yet."))
		require.Zero(t, b.chart("COUNT at each evaluation").Lines, "an empty chart until the first evaluation")
		b.shot("trigger-not-evaluated")
		b.checkAccessible("trigger (not evaluated)")
	})

	// send fills the "Send a notification" form and returns the id of the
	// delivery it opens.
	var delivered, msgID string
	send := func(t *testing.T, to, subject string) string {
		b.visit("/ui/deliveries")
		b.waitVisible(heading(2, "Send a notification"))
		b.do(
			chromedp.SendKeys(chromedp.Search(labelled("Recipient email")), to),
			chromedp.SendKeys(chromedp.Search(labelled("Subject")), subject),
			chromedp.SendKeys(chromedp.Search(labelled("Text")), "Sent from the browser test."),
			chromedp.Click(chromedp.Search(button("Send"))),
		)
		b.waitVisible(text("created: its delivery to " + to + " is queued."))
		u, err := url.Parse(b.location())
		require.NoError(t, err)
		id, ok := strings.CutPrefix(u.Path, "/ui/deliveries/")
		require.True(t, ok && strings.HasPrefix(id, "dlv_"), "the form leads to the delivery's page, not %s", u)
		return id
	}

	t.Run("send a notification and watch it reach delivered", func(t *testing.T) {
		b.t = t
		b.visit("/ui/deliveries")
		b.waitVisible(heading(1, "Deliveries"))
		b.waitVisible(text("No delivery yet."))
		b.shot("deliveries-empty")
		b.checkAccessible("deliveries")

		delivered = send(t, "oncall@example.com", "Checkout slow")
		b.waitVisible(heading(1, "Delivery "+delivered))
		// The page reloads itself until the delivery is final.
		b.waitVisible(field("State", "delivered"))
		require.False(t, b.eval(`!!document.querySelector('[data-refresh]')`), "a final delivery's page stops reloading")
		b.shot("delivery-delivered")
		b.checkAccessible("delivery")
	})
	if delivered == "" {
		return
	}

	t.Run("its attempts", func(t *testing.T) {
		b.t = t
		_, d := h.do(t, "GET", "/1/deliveries/"+delivered, nil)
		msgID, _ = d["partner_message_id"].(string)
		require.NotEmpty(t, msgID, "%v", d)
		b.waitVisible(field("Partner message id", msgID))
		attempt := timeline + `//li[strong[normalize-space()="Attempt 1"]][span[normalize-space()="accepted"]]`
		b.waitVisible(attempt + `//dt[normalize-space()="Message id"]/following-sibling::dd[1][normalize-space()=` + xpathString(msgID) + `]`)
		b.waitVisible(attempt + `//dt[normalize-space()="HTTP status"]/following-sibling::dd[1][normalize-space()="202"]`)
		// The partner's event that made it delivered.
		b.waitVisible(timeline + `//li[strong[normalize-space()="Partner event"]][contains(normalize-space(), "(delivered)")]`)
		// The request sent opens by keyboard.
		b.do(chromedp.Focus(chromedp.Search(`//summary[normalize-space()="Request 1 sent"]`)), chromedp.KeyEvent(kb.Enter))
		b.waitVisible(`//details[summary[normalize-space()="Request 1 sent"]]/pre`)
		b.shot("delivery-attempts")
	})

	t.Run("a failed delivery retried from its page", func(t *testing.T) {
		b.t = t
		// The sandbox refuses the next request, permanently.
		fault, _ := json.Marshal(map[string]any{"partner": "sendgrid", "kind": "status", "status": 400, "times": 1})
		resp, err := http.Post(sandboxURL(t, h)+"/_sandbox/faults", "application/json", bytes.NewReader(fault))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)

		id := send(t, "payments@example.com", "Payments down")
		b.waitVisible(field("State", "failed"))
		b.waitVisible(timeline + `//li[strong[normalize-space()="Attempt 1"]]//dt[normalize-space()="HTTP status"]/following-sibling::dd[1][normalize-space()="400"]`)
		b.shot("delivery-failed")
		b.checkAccessible("delivery (failed)")

		require.Equal(t, "Send delivery "+id+" to payments@example.com again?", b.confirmed(button("Retry")))
		b.waitVisible(text("Retry requested: the delivery is queued again."))
		b.waitVisible(field("State", "delivered"))
		b.waitVisible(timeline + `//li[strong[normalize-space()="Attempt 2"]][span[normalize-space()="accepted"]]`)
		require.False(t, b.eval(`[...document.querySelectorAll('button')].some(b => b.textContent.trim() === 'Retry')`), "a delivered delivery offers no retry")
		b.shot("delivery-retried")

		b.do(chromedp.Click(chromedp.Search(link("← All deliveries"))))
		b.waitVisible(heading(1, "Deliveries"))
		b.waitVisible(`//table//a[normalize-space()=` + xpathString(id) + `]`)
		b.shot("deliveries")
		b.checkAccessible("deliveries")
	})

	t.Run("trigger", func(t *testing.T) {
		b.t = t
		b.visit("/ui/triggers")
		b.waitVisible(heading(1, "Triggers"))
		b.shot("triggers")
		b.checkAccessible("triggers")

		// Wait for the scheduler's first evaluation, then read the chart.
		require.Eventually(t, func() bool {
			req, _ := http.NewRequest("GET", h.url+"/1/triggers/checkout/"+triggerID+"/evaluations", nil)
			req.Header.Set("X-Honeycomb-Team", h.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var evs []map[string]any
			return json.NewDecoder(resp.Body).Decode(&evs) == nil && len(evs) > 0
		}, time.Until(evaluatedAt)+10*time.Second, 100*time.Millisecond, "the trigger is evaluated at %s", evaluatedAt)
		b.do(chromedp.Click(chromedp.Search(link("Checkout traffic"))))
		b.waitVisible(heading(1, "Checkout traffic"))
		b.waitVisible(`//table[caption[normalize-space()="The newest evaluations first"]]//td[normalize-space()="ok"]`)
		c := b.chart("COUNT at each evaluation")
		require.Equal(t, 1, c.Lines, "one line: the query has no breakdown")
		require.Len(t, c.Thresholds, 1)
		require.Contains(t, c.Thresholds[0], "> 100", "the threshold is drawn")
		require.Greater(t, c.Height, 100.0)
		b.shot("trigger")
		b.checkAccessible("trigger")

		// Send test: the page asks first, then names the notification and
		// links its delivery.
		require.Equal(t, "Send a test notification to every recipient of this trigger?", b.confirmed(button("Send test")))
		b.waitVisible(text("Sent test notification"))
		b.waitVisible(`//p[contains(normalize-space(), "Follow its first delivery")]/a[starts-with(normalize-space(), "dlv_")]`)
		b.shot("trigger-test-sent")
	})

	t.Run("SLOs", func(t *testing.T) {
		b.t = t
		b.visit("/ui/slos")
		b.waitVisible(heading(1, "SLOs"))
		b.waitVisible(link("Checkout under 300 ms"))
		b.shot("slos")
		b.checkAccessible("SLOs")

		b.do(chromedp.Click(chromedp.Search(link("Delivery: email"))))
		b.waitVisible(heading(1, "Delivery: email"))
		b.waitVisible(heading(2, "Budget burn-down"))
		c := b.chart("Error budget remaining over the 30d period")
		require.Equal(t, 1, c.Lines)
		require.Equal(t, []string{"budget spent (0 %)"}, c.Thresholds)
		b.shot("slo-delivery-email")
		b.checkAccessible("SLO")

		b.visit("/ui/slos/checkout/" + o["id"].(string))
		b.waitVisible(heading(1, "Checkout under 300 ms"))
		b.chart("Error budget remaining over the 30d period")
		status, detail := h.do(t, "GET", "/1/slos/checkout/"+o["id"].(string)+"?detailed", nil)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, 95.833, detail["compliance"], "10 of the 240 earlier checkouts were slow: %v", detail)
		b.shot("slo-checkout")
		b.checkAccessible("SLO over events")
	})

	t.Run("sandbox mailbox", func(t *testing.T) {
		b.t = t
		b.visit("/ui/sandbox")
		b.waitVisible(heading(1, "Sandbox mailbox"))
		b.waitVisible(`//td[normalize-space()="payments@example.com"]`)
		b.shot("sandbox-mailbox")
		b.checkAccessible("sandbox mailbox")

		// The first notification, found by its recipient, with the message
		// id its delivery's page showed.
		b.do(chromedp.SendKeys(chromedp.Search(labelled("Recipient")), "oncall@example.com"),
			chromedp.Click(chromedp.Search(button("Search"))))
		b.waitVisible(text("1 message(s)."))
		b.waitVisible(`//tr[td[normalize-space()="oncall@example.com"]]/td/code[normalize-space()=` + xpathString(msgID) + `]`)
		b.shot("sandbox-mailbox-search")
	})

	t.Run("overview", func(t *testing.T) {
		b.t = t
		b.visit("/ui/")
		b.waitVisible(heading(2, "Delivery success"))
		b.waitVisible(`//table[caption[normalize-space()="email deliveries by partner"]]//th[normalize-space()="sandbox"]`)
		require.Equal(t, 1, b.chart("email: delivered share by partner").Lines)
		b.waitVisible(heading(2, "SLOs"))
		b.waitVisible(link("Delivery: email"))
		b.shot("overview")
		b.checkAccessible("overview")
	})
}

// chromium returns the path of a Chromium or Chrome binary on PATH, or
// skips the test (fails it with HERALD_REQUIRE_CHROMIUM=1) when there is
// none.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium on PATH (chromium, chromium-browser, google-chrome…): install Debian's chromium package to run the browser tests"
	if os.Getenv("HERALD_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg + "; HERALD_REQUIRE_CHROMIUM=1 makes that a failure")
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab on a running herald.
type browser struct {
	// t is the (sub)test the next step reports to.
	t    *testing.T
	ctx  context.Context
	base string
	// shots is the folder screenshots are written to.
	shots string
	// dialogs receives the message of each confirm dialog, which the
	// browser accepts.
	dialogs chan string
}

// stepTimeout bounds each browser step: a page that never shows what a
// step waits for fails the step, not the whole test run.
const stepTimeout = 15 * time.Second

func newBrowser(t *testing.T, exe, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		// Nothing but herald: no update checks, no sync, no QUIC probes
		// on a closed network.
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })

	shots := os.Getenv("HERALD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(moduleRoot(t), "ui-screenshots")
	}
	shots, err := filepath.Abs(shots)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("screenshots: %s", shots)

	// Start the browser with the tab's own context: the first action's
	// context owns the browser, so it must not be a step's timeout.
	require.NoError(t, chromedp.Do(ctx), "start Chromium")

	// A script error or a refused resource (the Content-Security-Policy)
	// fails the test; answers with an error status are the pages' to
	// show, and the steps check those.
	var mu sync.Mutex
	var problems []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException) && m.Source != "network" {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s %s: %s", m.Type, m.URL, m.Text))
				mu.Unlock()
			}
		}
	}()
	// Accept every confirm dialog (a form that asks before it acts), as a
	// person clicking OK would, and say what it asked.
	dialogs := make(chan string, 10)
	dialogsDone := make(chan struct{})
	go func() {
		defer close(dialogsDone)
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			select {
			case dialogs <- ev.Message:
			default:
			}
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		<-done
		<-dialogsDone
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return &browser{t: t, ctx: ctx, base: base, shots: shots, dialogs: dialogs}
}

// moduleRoot is the directory holding go.mod, above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test")
		dir = parent
	}
}

// do runs steps in order, failing the test on the first error.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, steps...))
}

// value runs one action and returns its value.
func value[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(b.t, err)
	return v
}

// visit loads a path of herald's.
func (b *browser) visit(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
}

// waitVisible waits until an element matching the XPath query is shown.
func (b *browser) waitVisible(xpath string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(xpath)))
	require.NoError(b.t, err, "waiting for %s on %s", xpath, b.location())
}

func (b *browser) location() string {
	b.t.Helper()
	return value(b, chromedp.Location())
}

// eval evaluates a JavaScript expression that yields a boolean.
func (b *browser) eval(expr string) bool {
	b.t.Helper()
	return value(b, chromedp.Evaluate[bool](expr))
}

// shot writes a full-page screenshot of the current page as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	png := value(b, chromedp.FullScreenshot(100))
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644))
}

// a11yProblems lists what makes the current page hard to use without
// sight or a mouse: form controls with no label, images and SVGs with no
// role and title, a count of <h1> other than one, buttons and links with
// no name, ids used twice, no language or title.
const a11yProblems = `(() => {
  const problems = [];
  const brief = el => el.outerHTML.slice(0, 160);
  const named = el => (el.getAttribute('aria-label') || '').trim() !== '' ||
    (el.getAttribute('aria-labelledby') || '').split(/\s+/).some(id => id && document.getElementById(id) && document.getElementById(id).textContent.trim() !== '');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type)) continue;
    if (!(el.labels && el.labels.length) && !named(el)) problems.push('form control without a label: ' + brief(el));
  }
  for (const el of document.querySelectorAll('button, input[type=submit], input[type=button], a[href]')) {
    const name = (el.textContent || el.value || '').trim();
    if (name === '' && !named(el) && !(el.title || '').trim()) problems.push('control without a name: ' + brief(el));
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push('image without alt: ' + brief(img));
  }
  for (const svg of document.querySelectorAll('svg')) {
    if (svg.parentElement.closest('svg') || svg.getAttribute('aria-hidden') === 'true') continue;
    const title = svg.querySelector(':scope > title');
    if (!svg.getAttribute('role') || !title || title.textContent.trim() === '') problems.push('svg without a role and a title: ' + brief(svg));
  }
  const h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) problems.push(h1 + ' <h1> elements, want one');
  const seen = new Set();
  for (const el of document.querySelectorAll('[id]')) {
    if (seen.has(el.id)) problems.push('id used twice: ' + el.id);
    seen.add(el.id);
  }
  if (!document.documentElement.lang) problems.push('<html> has no lang');
  if (document.title.trim() === '') problems.push('no <title>');
  return problems;
})()`

// checkAccessible fails the test with every problem a11yProblems finds on
// the current page.
func (b *browser) checkAccessible(name string) {
	b.t.Helper()
	problems := value(b, chromedp.Evaluate[[]string](a11yProblems))
	require.Empty(b.t, problems, "accessibility problems on the %s page", name)
}

// The XPath queries the test finds elements with: what a person sees.

func heading(level int, s string) string {
	return fmt.Sprintf(`//h%d[normalize-space()=%s]`, level, xpathString(s))
}

// labelled is the form control whose <label> reads s: one that names it
// with for=, or one that holds it.
func labelled(s string) string {
	return fmt.Sprintf(`//*[self::input or self::select or self::textarea][@id=//label[normalize-space()=%[1]s]/@for or ancestor::label[normalize-space(text()[1])=%[1]s]]`, xpathString(s))
}

// field is the value of a description list's term name, starting with
// value.
func field(name, value string) string {
	return fmt.Sprintf(`//dt[normalize-space()=%s]/following-sibling::dd[1][starts-with(normalize-space(), %s)]`, xpathString(name), xpathString(value))
}

// timeline is a delivery page's timeline.
const timeline = `//section[h2[normalize-space()="Timeline"]]`

func button(s string) string {
	return fmt.Sprintf(`//button[normalize-space()=%s]`, xpathString(s))
}

func link(s string) string {
	return fmt.Sprintf(`//a[normalize-space()=%s]`, xpathString(s))
}

// text is an element with a text node of its own containing s.
func text(s string) string {
	return fmt.Sprintf(`//*[text()[contains(normalize-space(.), %s)]]`, xpathString(s))
}

// xpathString quotes s as an XPath 1.0 literal, which has no escapes.
func xpathString(s string) string {
	if strings.Contains(s, `"`) {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

// sandboxURL is the built-in sandbox's address, from its log line.
func sandboxURL(t *testing.T, h *heraldProc) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(h.logs.all()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "sandbox listening" {
			return m["http"].(string)
		}
	}
	t.Fatal("no sandbox listening line in herald's log")
	return ""
}

// confirmed clicks a button whose form asks for confirmation, and returns
// what the dialog asked (the browser accepts it).
func (b *browser) confirmed(xpath string) string {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.Search(xpath)))
	select {
	case msg := <-b.dialogs:
		return msg
	case <-time.After(stepTimeout):
		b.t.Fatalf("pressing %s asked nothing", xpath)
		return ""
	}
}

// chartView is what a chart on the page shows.
type chartView struct {
	// Lines counts the drawn series.
	Lines int
	// Thresholds are the labels of the dashed reference lines.
	Thresholds []string
	// Height is the drawn height in CSS pixels.
	Height float64
}

// chart returns the chart (an <svg role="img">) whose title is title.
func (b *browser) chart(title string) chartView {
	b.t.Helper()
	js := fmt.Sprintf(`(() => {
  const svg = [...document.querySelectorAll('svg[role=img]')].find(s => {
    const t = s.querySelector(':scope > title');
    return t && t.textContent.trim() === %s;
  });
  if (!svg) return null;
  return {Lines: svg.querySelectorAll('.series path.line').length,
    Thresholds: [...svg.querySelectorAll('.threshold-label')].map(t => t.textContent.trim()),
    Height: svg.getBoundingClientRect().height};
})()`, jsString(title))
	v := value(b, chromedp.Evaluate[*chartView](js))
	require.NotNil(b.t, v, "no chart titled %q on %s", title, b.location())
	return *v
}

func jsString(s string) string {
	out, _ := json.Marshal(s)
	return string(out)
}

// dueTrigger creates, through the JSON API, a trigger on dataset counting
// its events every minute, and returns its id and when it is first
// evaluated. A trigger's evaluations fall at an offset in its period
// derived from its id (notify.Offset), so triggers are created until one
// is first due between from and to from now; the others are deleted.
func dueTrigger(t *testing.T, h *heraldProc, dataset string, from, to time.Duration) (string, time.Time) {
	t.Helper()
	for range 100 {
		status, tr := h.do(t, "POST", "/1/triggers/"+dataset, map[string]any{
			"name":        "Checkout traffic",
			"description": "More than 100 checkouts a minute",
			"query":       map[string]any{"calculations": []map[string]any{{"op": "COUNT"}}, "time_range": 60},
			"threshold":   map[string]any{"op": ">", "value": 100},
			"frequency":   60,
			"recipients":  []map[string]any{{"type": "email", "target": "checkout-oncall@example.com"}},
		})
		require.Equal(t, http.StatusCreated, status, "%v", tr)
		id := tr["id"].(string)
		updated, err := time.Parse(time.RFC3339Nano, tr["updated_at"].(string))
		require.NoError(t, err)
		// The first slot strictly after the trigger was saved.
		off := notify.Offset(id, 60)
		slot := updated.Add(-off).Truncate(time.Minute).Add(off)
		for !slot.After(updated) {
			slot = slot.Add(time.Minute)
		}
		if wait := time.Until(slot); wait >= from && wait <= to {
			return id, slot
		}
		status, _ = h.do(t, "DELETE", "/1/triggers/"+dataset+"/"+id, nil)
		require.Equal(t, http.StatusNoContent, status)
	}
	t.Fatalf("no trigger due in %s to %s in 100 tries", from, to)
	return "", time.Time{}
}
