package provider

import (
	"cmp"
	"context"
	"fmt"

	"herald"
)

// LookupDestination reads the destination a delivery names (an email's To)
// for a channel of kind ("webhook", "slack", "pagerduty"). When there is
// none to send to, ok is false and r is the result to return: rejected
// (reason no_destination) for a missing destination or one of another
// kind, transient (destination_lookup) when herald's own store failed —
// that is not the destination's fault, and may pass.
func LookupDestination(ctx context.Context, ds herald.Destinations, id, kind string) (d herald.Destination, r herald.Result, ok bool) {
	d, err := ds.GetDestination(ctx, id)
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		return d, herald.Result{Outcome: herald.OutcomeRejected, Reason: "no_destination",
			Error: fmt.Sprintf("%s: no destination %q", kind, id)}, false
	case err != nil:
		return d, herald.Result{Outcome: herald.OutcomeTransient, Reason: "destination_lookup",
			Error: fmt.Sprintf("%s: read destination %q: %v", kind, id, err)}, false
	case d.Type != kind:
		return d, herald.Result{Outcome: herald.OutcomeRejected, Reason: "no_destination",
			Error: fmt.Sprintf("%s: destination %q is a %s destination, not a %s one", kind, id, cmp.Or(d.Type, "typeless"), kind)}, false
	}
	return d, herald.Result{}, true
}
