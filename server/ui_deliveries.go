package server

import (
	"cmp"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"herald"
	"herald/notify"
	"herald/sqlstore"
)

// deliveriesView is what the deliveries page shows: the filter form as
// given, the page of deliveries or why the filters were refused, and the
// form that sends a notification.
type deliveriesView struct {
	State, Channel, Partner, Recipient, Trigger, Since, Until string
	States                                                    []herald.DeliveryState
	Channels, Partners                                        []string
	// Errors say why the filters were refused; then there is no page.
	Errors   []string
	Page     sqlstore.ActivityPage
	Filtered bool
	// Older continues the list; Newest returns to its first page (set on
	// later pages).
	Older, Newest string
	Send          sendForm
}

// sendForm is the "Send a notification" form, refilled after a refusal.
type sendForm struct {
	Recipient, Subject, Text string
	Error                    string
}

// filterLabels name the filter form's fields in its messages.
var filterLabels = map[string]string{"state": "State", "channel": "Channel", "partner": "Partner", "recipient": "Recipient",
	"trigger": "Trigger id", "since": "Since", "until": "Until", "before": "Page", "limit": "Page size"}

// handleDeliveriesPage is GET /ui/deliveries: every delivery, newest
// first, filtered by state, channel, partner, recipient, trigger and
// creation time, a page at a time.
func handleDeliveriesPage(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.deliveriesPage(w, r, sendForm{})
	})
}

// deliveriesPage renders the deliveries page for r's query, with send as
// the send form.
func (d Deps) deliveriesPage(w http.ResponseWriter, r *http.Request, send sendForm) {
	q := r.URL.Query()
	v := deliveriesView{State: q.Get("state"), Channel: q.Get("channel"), Partner: strings.TrimSpace(q.Get("partner")),
		Recipient: strings.TrimSpace(q.Get("recipient")), Trigger: strings.TrimSpace(q.Get("trigger")),
		Since: q.Get("since"), Until: q.Get("until"),
		States: herald.DeliveryStates, Channels: herald.RecipientTypes, Send: send}
	if d.Breakers != nil {
		v.Partners = slices.Sorted(maps.Keys(d.Breakers()))
	}
	f := sqlstore.ActivityFilter{State: herald.DeliveryState(v.State), Channel: v.Channel, Partner: v.Partner,
		Recipient: v.Recipient, TriggerID: v.Trigger}
	var errs []error
	var err error
	if f.Since, v.Since, err = formTime("since", v.Since); err != nil {
		errs = append(errs, err)
	}
	if f.Until, v.Until, err = formTime("until", v.Until); err != nil {
		errs = append(errs, err)
	}
	if s := q.Get("before"); s != "" {
		if f.Before, err = sqlstore.DecodeActivityCursor(s); err != nil {
			errs = append(errs, err)
		}
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > 200 {
			errs = append(errs, herald.Invalid("limit", "invalid", "%q is not a number from 1 to 200", s))
		}
	}
	v.Filtered = f.State != "" || f.Channel != "" || f.Partner != "" || f.Recipient != "" || f.TriggerID != "" ||
		!f.Since.IsZero() || !f.Until.IsZero()
	if len(errs) == 0 {
		v.Page, err = d.UIStore.Activity(r.Context(), f)
		switch {
		case herald.ErrorCode(err) == herald.EINVALID:
			errs = append(errs, err)
		case err != nil:
			d.uiError(w, r, err)
			return
		}
	}
	status := http.StatusOK
	for _, err := range errs {
		v.Errors = append(v.Errors, fieldMessage(err, filterLabels))
		status = http.StatusUnprocessableEntity
	}
	if send.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	if v.Page.Next != nil {
		v.Older = pageLink(q, v.Page.Next.String())
	}
	if f.Before != nil {
		v.Newest = pageLink(q, "")
	}
	title := "Deliveries"
	if v.Filtered {
		title = "Deliveries (filtered)"
	}
	d.render(w, r, status, "deliveries", page{Title: title, Nav: "deliveries", Data: v})
}

// formTime reads a time from the filter form: a datetime-local value
// (taken as UTC) or RFC 3339. It returns the time and the value to show
// back in the form.
func formTime(field, v string) (time.Time, string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, "", nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), t.UTC().Format("2006-01-02T15:04:05"), nil
		}
	}
	return time.Time{}, v, herald.Invalid(field, "invalid", "%q is not a time: pick one, or write it in RFC 3339 (2026-11-24T09:30:00Z)", v)
}

// pageLink links the deliveries page with query q, its "before" cursor
// set to before (removed when empty) and no flash message.
func pageLink(q url.Values, before string) string {
	q = maps.Clone(q)
	q.Del("flash")
	q.Del("before")
	if before != "" {
		q.Set("before", before)
	}
	if len(q) == 0 {
		return "/ui/deliveries"
	}
	return "/ui/deliveries?" + q.Encode()
}

// fieldMessage words an EINVALID error for a form: the field's label, then
// what is wrong with it.
func fieldMessage(err error, labels map[string]string) string {
	var he *herald.Error
	if !errors.As(err, &he) {
		return err.Error()
	}
	if len(he.Fields) == 0 {
		return he.Message
	}
	var out []string
	for _, f := range he.Fields {
		out = append(out, cmp.Or(labels[f.Field], f.Field)+": "+f.Description)
	}
	return strings.Join(out, "; ")
}

// timelineEntry is one line of a delivery's history: exactly one of
// Transition, Attempt and Event is set.
type timelineEntry struct {
	At         time.Time
	Transition *sqlstore.Transition
	Attempt    *herald.Attempt
	Event      *sqlstore.ReceivedEvent
}

// deliveryView is what a delivery's page shows.
type deliveryView struct {
	Delivery     *herald.Delivery
	Notification *herald.Notification
	// TriggerID and TriggerDataset name the trigger the notification is
	// about, if any.
	TriggerID, TriggerDataset string
	Timeline                  []timelineEntry
	// Live: the delivery is still on its way; the page reloads itself.
	Live     bool
	CanRetry bool
}

// handleDeliveryPage is GET /ui/deliveries/{id}: a delivery's summary and
// its timeline — state changes, attempts and partner events in time order.
func handleDeliveryPage(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		del, err := d.Reader.GetDelivery(ctx, r.PathValue("id"))
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		n, err := d.Reader.GetNotification(ctx, del.NotificationID)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		transitions, err := d.UIStore.Transitions(ctx, del.ID)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		events, err := d.UIStore.PartnerEvents(ctx, del.ID)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		v := deliveryView{Delivery: del, Notification: n, TriggerID: n.Metadata[herald.MetaTriggerID],
			Live: !del.State.Final(), CanRetry: del.State == herald.StateFailed}
		if v.TriggerID != "" && n.Alert != nil {
			v.TriggerDataset = n.Alert.Dataset
		}
		for i := range transitions {
			v.Timeline = append(v.Timeline, timelineEntry{At: transitions[i].At, Transition: &transitions[i]})
		}
		for i := range del.AttemptLog {
			v.Timeline = append(v.Timeline, timelineEntry{At: del.AttemptLog[i].StartedAt, Attempt: &del.AttemptLog[i]})
		}
		for i := range events {
			// Placed when herald received it, which is when it changed
			// the delivery; the partner's own time is shown beside it.
			v.Timeline = append(v.Timeline, timelineEntry{At: events[i].ReceivedAt, Event: &events[i]})
		}
		// Stable: at one instant, state changes come before the attempt
		// they start, as they were recorded.
		slices.SortStableFunc(v.Timeline, func(a, b timelineEntry) int { return a.At.Compare(b.At) })
		d.render(w, r, http.StatusOK, "delivery", page{Title: "Delivery " + del.ID, Nav: "deliveries", Data: v})
	})
}

// handleDeliveryRetryForm is POST /ui/deliveries/{id}/retry: sends a
// failed delivery again, and returns to its page.
func handleDeliveryRetryForm(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		flash := "Retry requested: the delivery is queued again."
		if _, err := d.Notifier.Retry(r.Context(), id); err != nil {
			var he *herald.Error
			if herald.ErrorCode(err) != herald.ECONFLICT || !errors.As(err, &he) {
				d.uiError(w, r, err)
				return
			}
			flash = "Not retried: " + he.Message + "."
		}
		http.Redirect(w, r, "/ui/deliveries/"+url.PathEscape(id)+"?flash="+url.QueryEscape(flash), http.StatusSeeOther)
	})
}

// sendLabels name the send form's fields in its messages.
var sendLabels = map[string]string{"recipients": "Recipient", "recipients[0].target": "Recipient", "recipients[0].type": "Recipient",
	"subject": "Subject", "text": "Text"}

// handleNotificationForm is POST /ui/notifications: sends a notification
// to one email address, as POST /1/notifications does, and shows its
// delivery.
func handleNotificationForm(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form := sendForm{Recipient: strings.TrimSpace(r.PostFormValue("recipient")), Subject: strings.TrimSpace(r.PostFormValue("subject")),
			Text: r.PostFormValue("text")}
		n, _, err := d.Notifier.Create(r.Context(), notify.CreateRequest{
			Recipients: []herald.Recipient{{Type: "email", Target: form.Recipient}}, Subject: form.Subject, Text: form.Text}, "")
		switch {
		case herald.ErrorCode(err) == herald.EINVALID:
			form.Error = fieldMessage(err, sendLabels)
			r.URL.RawQuery = "" // the list's first page
			d.deliveriesPage(w, r, form)
			return
		case err != nil:
			d.uiError(w, r, err)
			return
		case len(n.Deliveries) == 0:
			d.uiError(w, r, herald.Errorf(herald.EINTERNAL, "notification %s has no delivery", n.ID))
			return
		}
		flash := "Notification " + n.ID + " created: its delivery to " + form.Recipient + " is queued."
		http.Redirect(w, r, "/ui/deliveries/"+url.PathEscape(n.Deliveries[0].ID)+"?flash="+url.QueryEscape(flash), http.StatusSeeOther)
	})
}
