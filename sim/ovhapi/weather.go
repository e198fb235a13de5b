package ovhapi

import (
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"time"
)

// Weather is how the API misbehaves on its own, as the real one does on a
// bad day. Every draw comes from a generator per server seeded from Seed
// and the server's name, so a run is repeatable. The zero value misbehaves
// in no way (Calm); BadDay is the default.
type Weather struct {
	Seed uint64
	// DelayMin and DelayMax bound the time every answer takes (uniform).
	DelayMin, DelayMax time.Duration
	// TaskNotFoundFor is how long after its creation GET task/{id} answers
	// 404: the region that runs the task has not told the API yet.
	TaskNotFoundFor time.Duration
	// ErrorBursts is the chance that a request for a server starts a burst
	// of 1 to BurstMax 5xx answers (it included); they change nothing.
	ErrorBursts float64
	BurstMax    int
	// LostAnswers is the chance that a write (PUT, POST) is carried out and
	// then answered 504.
	LostAnswers float64
	// Rate is the consumer key's budget; above it the API answers 429 with
	// Retry-After. Zero Requests: no limit.
	Rate Rate
	// TaskPurge is how long after it ended a task disappears (404 and out
	// of the list), as OVH cleans its task database; zero: never.
	TaskPurge time.Duration
}

// Rate is Requests per Per, with Burst of them at once.
type Rate struct {
	Requests int
	Per      time.Duration
	Burst    int
}

// BadDay is the API as nixbook must expect it: answers in tens of
// milliseconds, new tasks unknown for a few seconds, a 5xx burst every
// fifty requests or so, one write in twenty answered 504 after it was
// carried out, and 429 above 60 requests a minute (bursts of 20), OVH's
// fair-use figure. Delays and durations are short enough for tests and
// demos; a real bad day lasts longer.
func BadDay(seed uint64) *Weather {
	return &Weather{
		Seed:            seed,
		DelayMin:        20 * time.Millisecond,
		DelayMax:        120 * time.Millisecond,
		TaskNotFoundFor: 3 * time.Second,
		ErrorBursts:     0.02,
		BurstMax:        2,
		LostAnswers:     0.05,
		Rate:            Rate{Requests: 60, Per: time.Minute, Burst: 20},
		TaskPurge:       time.Hour,
	}
}

// Calm is an API that never misbehaves by itself.
func Calm() *Weather { return &Weather{} }

// rngOf returns the weather's generator for s. Called with e.mu held.
func (e *Emulator) rngOf(s *server) *rand.Rand {
	if s.rng == nil {
		h := fnv.New64a()
		_, _ = h.Write([]byte(s.Name))
		s.rng = rand.New(rand.NewPCG(e.weather.Seed, h.Sum64()))
	}
	return s.rng
}

// delay is how long the next answer for s takes. Called with e.mu held.
func (e *Emulator) delay(s *server) time.Duration {
	w := e.weather
	if w.DelayMax <= 0 {
		return 0
	}
	if w.DelayMax <= w.DelayMin {
		return w.DelayMin
	}
	return w.DelayMin + time.Duration(e.rngOf(s).Int64N(int64(w.DelayMax-w.DelayMin)))
}

// stormBefore says whether a request for s is answered 5xx before it is
// looked at. Called with e.mu held.
func (e *Emulator) stormBefore(s *server) *apiError {
	w := e.weather
	if s.burstLeft > 0 {
		s.burstLeft--
		return burstError(s.burstLeft)
	}
	if w.ErrorBursts <= 0 || e.rngOf(s).Float64() >= w.ErrorBursts {
		return nil
	}
	s.burstLeft = e.rngOf(s).IntN(max(1, w.BurstMax)) // this request is the first
	return burstError(s.burstLeft)
}

// burstError varies the 5xx of a burst as the real gateway does.
func burstError(n int) *apiError {
	switch n % 3 {
	case 1:
		return &apiError{status: http.StatusBadGateway, class: "Server::BadGateway", message: "Bad gateway"}
	case 2:
		return &apiError{status: http.StatusServiceUnavailable, class: "Server::ServiceUnavailable", message: "Service unavailable"}
	}
	return errInternal
}

// loseAnswer says whether a write for s that was carried out is answered
// 504 all the same. Called with e.mu held.
func (e *Emulator) loseAnswer(s *server) bool {
	return e.weather.LostAnswers > 0 && e.rngOf(s).Float64() < e.weather.LostAnswers
}

// admit counts a request against the key's rate (GCRA); it returns the
// 429 to answer when the request is over it. Called with e.mu held.
func (e *Emulator) admit(now time.Time) *apiError {
	r := e.weather.Rate
	if r.Requests <= 0 || r.Per <= 0 {
		return nil
	}
	interval := r.Per / time.Duration(r.Requests)
	tolerance := time.Duration(max(1, r.Burst)-1) * interval
	if e.tat.Before(now) {
		e.tat = now
	}
	if allowAt := e.tat.Add(-tolerance); allowAt.After(now) {
		return errTooMany(allowAt.Sub(now))
	}
	e.tat = e.tat.Add(interval)
	return nil
}

// taskHidden says whether the API does not know t right now: too new for
// the region that answers, or purged. Called with e.mu held.
func (e *Emulator) taskHidden(t *task, now time.Time) bool {
	w := e.weather
	if w.TaskNotFoundFor > 0 && now.Before(t.created.Add(w.TaskNotFoundFor)) {
		return true
	}
	return w.TaskPurge > 0 && t.final() && !now.Before(t.doneAt.Add(w.TaskPurge))
}
