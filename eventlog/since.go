package eventlog

// Seq is the sequence number of the last event added (0 before the first): readers that
// follow the log (the API's event stream) poll it, which costs a lock and no copy.
func (l *Log) Seq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// Since returns the events of a cluster ("" for every cluster) added after the sequence
// number after, oldest first, at most n of them (the newest; n <= 0: all kept). Only the
// events newer than after are looked at, newest first, so following the log costs what
// is new, not the ring's size.
func (l *Log) Since(cluster string, after uint64, n int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := len(l.ring)
	var out []Event
	for k := 0; k < size; k++ {
		// The k-th newest event.
		i := size - 1 - k
		if l.full {
			i = (l.next - 1 - k + 2*size) % size
		}
		e := l.ring[i]
		if e.Seq <= after {
			break
		}
		if cluster == "" || e.Cluster == cluster {
			out = append(out, e)
			if n > 0 && len(out) == n {
				break
			}
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
