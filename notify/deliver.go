package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/sqlstore"
)

// Deliver makes the next attempt on a delivery: it is the queue's Handler.
// It returns the wait before the next attempt when one is due, zero when
// the delivery needs nothing more now, and an error only when the store
// failed (the queue then retries the job).
//
// Partners are tried in the channel's order, skipping those whose breaker
// is open. A partner-side rejection (bad key, unverified sender, suspended
// account), or a throttle whose named wait is a minute or more (an
// exhausted quota), fails over to the next partner at once; a transient
// failure, a shorter throttle or an unknown outcome waits for the retry
// policy (honouring the wait the partner named). Nothing is ever retried
// after accepted. An unknown outcome is retried (docs/adr/0004), and the
// retry is counted as a possible duplicate.
func (s *Service) Deliver(ctx context.Context, deliveryID string) (time.Duration, error) {
	d, n, interrupted, wait, err := s.begin(ctx, deliveryID)
	if err != nil || d == nil {
		return wait, err
	}
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": n.TraceParent})
	ctx, span := s.tracer.Start(ctx, "notify.Deliver", trace.WithAttributes(
		attribute.String("herald.delivery.id", d.ID),
		attribute.String("herald.notification.id", n.ID),
		attribute.String("herald.channel", d.Channel),
		attribute.Int("herald.attempt.previous", d.Attempts),
	))
	defer span.End()
	if interrupted {
		span.AddEvent("previous attempt interrupted: outcome unknown")
	}

	partners := s.cfg.Channels[d.Channel]
	if d.PinnedPartner != "" {
		partners = slices.DeleteFunc(slices.Concat(partners, s.cfg.Reserve[d.Channel]), func(p herald.Provider) bool { return p.Name() != d.PinnedPartner })
	}
	if len(partners) == 0 {
		cause := "no partner is configured for channel " + d.Channel
		if _, err := s.cfg.Store.Update(ctx, d.ID, func(cur *herald.Delivery) (sqlstore.Change, error) {
			if cur.State != herald.StateSending {
				return sqlstore.Change{}, sqlstore.ErrNoChange
			}
			cur.Reason = cause
			return sqlstore.Change{To: herald.StateFailed, Cause: cause}, nil
		}); err != nil {
			return 0, err
		}
		span.SetStatus(codes.Error, cause)
		s.metrics.finished.WithLabelValues(d.Channel, string(herald.StateFailed)).Inc()
		return 0, nil
	}
	var reopen time.Time
	for _, p := range partners {
		ok, until := s.breakers[p.Name()].allow()
		if !ok {
			if reopen.IsZero() || until.Before(reopen) {
				reopen = until
			}
			continue
		}
		r, attempt := s.attempt(ctx, p, d, n)
		next, wait, err := s.record(ctx, d, attempt, p == partners[len(partners)-1])
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			return 0, err
		}
		switch {
		case next == herald.StateAccepted:
			span.SetAttributes(attribute.String("herald.state", string(next)))
			return 0, nil
		case next == herald.StateSending:
			d.Attempts++ // failing over within this job
			continue
		}
		span.SetAttributes(attribute.String("herald.state", string(next)))
		if next == herald.StateFailed {
			span.SetStatus(codes.Error, "delivery failed: "+r.Reason)
		}
		return wait, nil
	}
	// Every partner's breaker is open: wait for the first to let a probe
	// through, unless the round is over.
	wait = reopen.Sub(s.clock.Now())
	fin, err := s.cfg.Store.Update(ctx, d.ID, func(cur *herald.Delivery) (sqlstore.Change, error) {
		if cur.State != herald.StateSending {
			return sqlstore.Change{}, sqlstore.ErrNoChange
		}
		if s.clock.Now().Add(wait).Sub(cur.RoundStartedAt) > s.policy.MaxAge {
			cur.Reason = "expired: every partner's circuit breaker stayed open"
			return sqlstore.Change{To: herald.StateFailed, Cause: cur.Reason}, nil
		}
		at := s.clock.Now().Add(wait)
		cur.NextAttemptAt, cur.LeaseUntil = &at, nil
		return sqlstore.Change{To: herald.StateQueued, Cause: "every partner's circuit breaker is open"}, nil
	})
	if err != nil {
		return 0, err
	}
	if fin.State == herald.StateFailed {
		s.metrics.finished.WithLabelValues(d.Channel, string(herald.StateFailed)).Inc()
		return 0, nil
	}
	span.AddEvent("every partner's circuit breaker is open")
	return max(wait, time.Millisecond), nil
}

// begin claims a delivery for one attempt: a due queued delivery moves to
// sending under a lease. A delivery found sending with an expired lease was
// interrupted mid-attempt (its worker died): that attempt is recorded as
// unknown, so the next one counts as a possible duplicate. A delivery not yet
// due, or leased by another worker, is left alone and the wait returned.
// It returns a nil delivery when there is nothing to do now.
func (s *Service) begin(ctx context.Context, id string) (*herald.Delivery, *herald.Notification, bool, time.Duration, error) {
	interrupted := false
	var wait time.Duration
	now := s.clock.Now()
	lease := now.Add(s.cfg.AttemptTimeout*time.Duration(max(len(s.cfg.Channels["email"]), 1)) + leaseMargin)
	d, err := s.cfg.Store.Update(ctx, id, func(d *herald.Delivery) (sqlstore.Change, error) {
		switch {
		case d.State == herald.StateQueued && d.NextAttemptAt != nil && d.NextAttemptAt.After(now):
			wait = d.NextAttemptAt.Sub(now) // an early job: keep the backoff
			return sqlstore.Change{}, sqlstore.ErrNoChange
		case d.State == herald.StateQueued:
			d.NextAttemptAt, d.LeaseUntil = nil, &lease
			return sqlstore.Change{To: herald.StateSending, Cause: fmt.Sprintf("attempt %d", d.Attempts+1)}, nil
		case d.State == herald.StateSending && d.LeaseUntil != nil && d.LeaseUntil.After(now):
			wait = d.LeaseUntil.Sub(now) // another worker is on it
			return sqlstore.Change{}, sqlstore.ErrNoChange
		case d.State == herald.StateSending:
			interrupted = true
			d.Attempts++
			d.LastOutcome = herald.OutcomeUnknown
			d.LeaseUntil = &lease
			return sqlstore.Change{Cause: "interrupted", Attempt: &herald.Attempt{
				ID: herald.NewID("att_", now), DeliveryID: d.ID, Number: d.Attempts, Partner: d.Partner, StartedAt: now,
				Result: herald.Result{Outcome: herald.OutcomeUnknown, Reason: "interrupted",
					Error: "herald stopped during this attempt; the partner may have the message"},
			}}, nil
		}
		return sqlstore.Change{}, sqlstore.ErrNoChange
	})
	if err != nil {
		return nil, nil, false, 0, err
	}
	if d.State != herald.StateSending || wait > 0 {
		return nil, nil, false, wait, nil // accepted, failed, not due, or someone else's
	}
	if interrupted {
		s.log.WarnContext(ctx, "delivery interrupted mid-attempt; retrying", "delivery_id", id, "partner", d.Partner)
	}
	n, ok := s.recent.get(d.NotificationID)
	if !ok {
		if n, err = s.cfg.Store.Notification(ctx, d.NotificationID); err != nil {
			return nil, nil, false, 0, err
		}
	}
	return d, n, interrupted, 0, nil
}

// longThrottle is the partner-named wait beyond which herald fails over to
// the next partner rather than wait (an exhausted daily quota, say).
const longThrottle = time.Minute

// failsOver reports whether r sends the delivery to the channel's next
// partner at once: the partner refused for reasons of its own (bad key,
// unverified sender, suspended account), or asked for a long wait.
func failsOver(r herald.Result) bool {
	return r.PartnerSide && (r.Outcome == herald.OutcomeRejected ||
		(r.Outcome == herald.OutcomeThrottled && r.RetryAfter >= longThrottle))
}

// leaseMargin is added to the longest a job's attempts can take.
const leaseMargin = 2 * time.Second

// attempt makes one send through p and returns its result and record.
func (s *Service) attempt(ctx context.Context, p herald.Provider, d *herald.Delivery, n *herald.Notification) (herald.Result, *herald.Attempt) {
	number := d.Attempts + 1
	md := withIDs(n.Metadata, n.ID, d.ID)
	ctx, span := s.tracer.Start(ctx, "notify.Attempt", trace.WithAttributes(
		attribute.String("herald.partner", p.Name()),
		attribute.String("herald.partner.kind", p.Kind()),
		attribute.Int("herald.attempt", number),
		attribute.StringSlice("herald.metadata.keys", slices.Sorted(maps.Keys(md))),
	))
	defer span.End()
	started := s.clock.Now()
	actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	r := p.Send(actx, &herald.Email{To: d.Recipient.Target, Subject: n.Subject, Text: n.Text, HTML: n.HTML, Metadata: md,
		Alert: n.Alert, Options: d.Options})
	cancel()
	dur := s.clock.Now().Sub(started)

	span.SetAttributes(attribute.String("herald.outcome", string(r.Outcome)), attribute.String("herald.reason", r.Reason))
	if r.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", r.Status))
	}
	if r.MessageID != "" {
		span.SetAttributes(attribute.String("herald.partner.message_id", r.MessageID))
	}
	if r.Outcome != herald.OutcomeAccepted {
		span.SetStatus(codes.Error, string(r.Outcome)+": "+r.Reason)
	}
	s.metrics.attempts.WithLabelValues(p.Name(), d.Channel, string(r.Outcome), r.Reason).Inc()
	s.metrics.duration.WithLabelValues(p.Name(), d.Channel, string(r.Outcome)).Observe(dur.Seconds())

	// A webhook's receivers are as many servers as there are recipients:
	// one failing says nothing of the others, so webhooks have no shared
	// breaker.
	b := s.breakers[p.Name()]
	switch {
	case p.Kind() == "webhook":
	case r.Outcome == herald.OutcomeTransient || (r.Outcome == herald.OutcomeUnknown && r.PartnerSide):
		b.failure(false)
	case r.Outcome == herald.OutcomeRejected && r.PartnerSide:
		b.failure(true)
	default:
		b.success()
	}
	if b.state() == BreakerClosed {
		s.metrics.breaker.WithLabelValues(p.Name()).Set(0)
	} else {
		s.metrics.breaker.WithLabelValues(p.Name()).Set(1)
	}
	s.log.DebugContext(ctx, "attempt", "delivery_id", d.ID, "partner", p.Name(), "attempt", number,
		"outcome", r.Outcome, "reason", r.Reason, "status", r.Status, "duration_ms", dur.Milliseconds())
	return r, &herald.Attempt{
		ID: herald.NewID("att_", started), DeliveryID: d.ID, Number: number, Partner: p.Name(),
		StartedAt: started, Duration: dur, Result: r, TraceID: span.SpanContext().TraceID().String(),
	}
}

// record writes the attempt and the delivery's next state in one
// transaction and returns that state and the wait before the next attempt.
// lastPartner says whether a partner-side rejection has nowhere to fail
// over to.
func (s *Service) record(ctx context.Context, d *herald.Delivery, a *herald.Attempt, lastPartner bool) (herald.DeliveryState, time.Duration, error) {
	ctx = context.WithoutCancel(ctx) // an attempt made is recorded, even while shutting down
	r := a.Result
	var wait time.Duration
	cur, err := s.cfg.Store.Update(ctx, d.ID, func(cur *herald.Delivery) (sqlstore.Change, error) {
		if cur.State != herald.StateSending {
			return sqlstore.Change{}, errors.New("notify: delivery left sending during an attempt")
		}
		cur.Attempts = a.Number
		cur.Partner = a.Partner
		failover := failsOver(r) && !lastPartner
		if !failover {
			cur.LeaseUntil = nil // this job is done with it
		}
		if cur.LastOutcome == herald.OutcomeUnknown {
			cur.PossibleDuplicates++ // the previous attempt may have reached the partner
			s.metrics.duplicates.WithLabelValues(cur.Channel).Inc()
		}
		cur.LastOutcome = r.Outcome
		change := sqlstore.Change{Attempt: a}
		inRound := cur.Attempts - cur.RoundAttempts
		now := s.clock.Now()
		switch {
		case r.Outcome == herald.OutcomeAccepted:
			cur.PartnerMessageID, cur.Reason = r.MessageID, ""
			change.To, change.Cause = herald.StateAccepted, "accepted by "+a.Partner
		case r.Outcome == herald.OutcomeRejected && !r.PartnerSide:
			cur.Reason = "rejected by " + a.Partner + ": " + r.Reason
			change.To, change.Cause = herald.StateFailed, cur.Reason
		case failover:
			change.Cause = "failing over: " + a.Partner + " answered " + string(r.Outcome) + " (" + r.Reason + ")"
		case r.Outcome == herald.OutcomeRejected:
			cur.Reason = "every partner refused; last " + a.Partner + ": " + r.Reason
			change.To, change.Cause = herald.StateFailed, cur.Reason
		case inRound >= s.policy.MaxAttempts:
			cur.Reason = fmt.Sprintf("gave up after %d attempts; last %s: %s", inRound, r.Outcome, r.Reason)
			change.To, change.Cause = herald.StateFailed, cur.Reason
		default:
			wait = s.policy.Wait(inRound, r.RetryAfter)
			if now.Add(wait).Sub(cur.RoundStartedAt) > s.policy.MaxAge {
				cur.Reason = fmt.Sprintf("gave up: the next attempt would be past the %s limit; last %s: %s", s.policy.MaxAge, r.Outcome, r.Reason)
				change.To, change.Cause, wait = herald.StateFailed, cur.Reason, 0
				break
			}
			at := now.Add(wait)
			cur.NextAttemptAt = &at
			cur.Reason = string(r.Outcome) + ": " + r.Reason
			change.To, change.Cause = herald.StateQueued, fmt.Sprintf("retry in %s after %s (%s)", wait, r.Outcome, r.Reason)
		}
		return change, nil
	})
	if err != nil {
		return "", 0, err
	}
	d.PossibleDuplicates, d.LastOutcome = cur.PossibleDuplicates, cur.LastOutcome
	switch cur.State {
	case herald.StateFailed:
		s.metrics.finished.WithLabelValues(d.Channel, string(herald.StateFailed)).Inc()
	case herald.StateAccepted, herald.StateDelivered, herald.StateBounced, herald.StateDropped:
		// Accepted; a partner event that was waiting for this record may
		// already have moved it on.
		s.metrics.finished.WithLabelValues(d.Channel, string(herald.StateAccepted)).Inc()
	}
	return cur.State, wait, nil
}
