package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/offline-loyalty/terminal/agent"
)

// watchPath streams the agent's notices: one JSON object a line
// ({"kind":"event"}, {"kind":"scan","scan":{...}}, ...), and an
// empty line every heartbeat, by which a client gone away is noticed.
const watchPath = "/v1/watch"

// heartbeat is how often an idle watch stream sends an empty line.
const heartbeat = 10 * time.Second

func watch(w http.ResponseWriter, r *http.Request, a Agent, log *slog.Logger) {
	notices, stop := a.Watch()
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send([]byte("\n")) { // the headers go out at once
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if !send([]byte("\n")) {
				return
			}
		case n := <-notices:
			b, err := json.Marshal(n)
			if err != nil {
				log.Error("watch", "err", err)
				return
			}
			if !send(append(b, '\n')) {
				return
			}
		}
	}
}

// streamsEnd wraps h so that the watch stream's requests end when stopping
// does (the server is shutting down): a graceful shutdown waits for busy
// connections, and a stream is busy until it ends.
func streamsEnd(h http.Handler, stopping context.Context) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == watchPath {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			defer context.AfterFunc(stopping, cancel)()
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(w, r)
	})
}

// Watch calls GET /v1/watch and passes each notice to fn until ctx ends
// or the stream does (the agent stopped); it returns why it ended.
func (c *Client) Watch(ctx context.Context, fn func(agent.Notice)) error {
	return c.watch(ctx, func() {}, fn)
}

// watch is Watch that calls opened once the stream is open.
func (c *Client) watch(ctx context.Context, opened func(), fn func(agent.Notice)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+watchPath, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("local api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	opened()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var n agent.Notice
		if err := json.Unmarshal(line, &n); err != nil {
			return fmt.Errorf("local api: watch: %w", err)
		}
		fn(n)
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("local api: watch: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("local api: watch: the agent ended the stream")
}
