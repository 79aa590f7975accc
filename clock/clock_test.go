package clock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/clock"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func TestFakeRunsDueCallsInTimeOrder(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(t0)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(t0).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	c.AfterFunc(time.Second, at("b")) // same instant: in scheduling order
	stopped := c.AfterFunc(2*time.Second, at("never"))
	require.True(t, stopped.Stop())
	require.False(t, stopped.Stop())

	c.Advance(2 * time.Second)
	require.Equal(t, []string{"a@1s", "b@1s"}, got)
	require.Equal(t, t0.Add(2*time.Second), c.Now())
	require.Equal(t, 1, c.Pending())

	c.Advance(time.Hour)
	require.Equal(t, []string{"a@1s", "b@1s", "c@3s"}, got)
	require.Equal(t, t0.Add(time.Hour+2*time.Second), c.Now())
}

func TestFakeRunsCallsScheduledByCalls(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(t0)
	var fired []time.Duration
	var retry func()
	retry = func() {
		fired = append(fired, c.Now().Sub(t0))
		if len(fired) < 4 {
			c.AfterFunc(time.Duration(len(fired))*time.Minute, retry)
		}
	}
	c.AfterFunc(0, retry)
	c.Advance(0)
	require.Equal(t, []time.Duration{0}, fired)
	c.Advance(10 * time.Minute)
	require.Equal(t, []time.Duration{0, time.Minute, 3 * time.Minute, 6 * time.Minute}, fired)
	require.Zero(t, c.Pending())
}

func TestRealClock(t *testing.T) {
	t.Parallel()
	c := clock.Real()
	require.WithinDuration(t, time.Now(), c.Now(), time.Second)
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
}
