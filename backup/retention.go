package backup

import (
	"fmt"
	"sort"
	"time"
)

// Expired returns the stored backups the policy no longer keeps, with restic's rule: for
// each period (hour, day, ISO week, month, year) the newest backup of each of the last N
// periods that have one is kept; whatever no period keeps expires. Each kind is judged on
// its own, and the newest usable backup of each kind is always kept, so a seed source
// never disappears. A zero policy expires nothing. Pure.
func Expired(all []Meta, k Keep) []Meta {
	if k == (Keep{}) {
		return nil
	}
	byKind := map[Kind][]Meta{}
	for _, m := range all {
		byKind[m.Kind] = append(byKind[m.Kind], m)
	}
	var out []Meta
	for _, ms := range byKind {
		sort.Slice(ms, func(i, j int) bool { return ms[i].Start.After(ms[j].Start) })
		keep := make([]bool, len(ms))
		for i, m := range ms {
			if Usable(m) {
				keep[i] = true
				break
			}
		}
		rules := []struct {
			n      int
			bucket func(time.Time) string
		}{
			{k.Hourly, func(t time.Time) string { return t.Format("2006-01-02T15") }},
			{k.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
			{k.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-%02d", y, w) }},
			{k.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
			{k.Yearly, func(t time.Time) string { return t.Format("2006") }},
		}
		for _, r := range rules {
			seen := map[string]bool{}
			for i, m := range ms {
				if len(seen) >= r.n {
					break
				}
				b := r.bucket(m.Start.UTC())
				if !seen[b] {
					seen[b] = true
					keep[i] = true
				}
			}
		}
		for i, m := range ms {
			if !keep[i] {
				out = append(out, m)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Prune removes the backups the policy expires and returns their ids.
func (s *Store) Prune(k Keep) ([]string, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, m := range Expired(all, k) {
		if err := s.Remove(m.ID); err != nil {
			return ids, err
		}
		ids = append(ids, m.ID)
	}
	return ids, nil
}
