package statuspage

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/kstreams-go/kstreams/internal/topology"
)

// The picture is laid out top to bottom in rows: above each sub-topology
// the topics it reads that no earlier row holds, then its nodes, one row
// per distance from its sources (as Describe orders them), each store
// beside the first processor that uses it, and below it the topics it
// writes that no sub-topology reads. So a repartition topic sits between
// the sub-topology that writes it and the one that reads it. An arrow
// crossing rows passes through a waypoint in each, so that it runs
// between the boxes. Within a row, items go under the items feeding
// them, pushed apart so none overlap. Labels are monospace, so their
// width is known here.
const (
	charWidth   = 7.2 // of 12px monospace
	labelPad    = 24  // room around a label
	skew        = 10  // of a topic's parallelogram
	itemHeight  = 30
	itemGap     = 24 // between items of a row
	rowGap      = 34 // between rows
	margin      = 12 // around the picture
	clusterPad  = 14 // between a sub-topology's frame and its items
	clusterHead = 22 // room for a sub-topology's title
)

type itemKind int

const (
	source itemKind = iota
	processor
	sink
	topic
	store
	waypoint // where an arrow crosses a row
)

// item is one box of the picture.
type item struct {
	kind   itemKind
	name   string
	title  string  // tooltip
	inputs []*item // items with an edge into this one, for placing it
	row    int
	x, y   float64 // top left
	w      float64
}

func (it *item) cx() float64 { return it.x + it.w/2 }

type arrow struct {
	from, to *item
	via      []*item // waypoints, one per row between from and to
	store    bool
}

type layout struct {
	rows     [][]*item
	clusters []cluster
	arrows   []arrow
	width    float64
	height   float64
}

type cluster struct {
	id                int
	firstRow, lastRow int
	top, bottom       float64
}

func newItem(kind itemKind, name, title string) *item {
	w := float64(utf8.RuneCountInString(name))*charWidth + labelPad
	if kind == topic {
		w += 2 * skew
	}
	return &item{kind: kind, name: name, title: title, w: w}
}

// build lays g out as the comment at the top of this file says.
func build(g topology.Graph) *layout {
	l := &layout{}
	nodes := map[string]*item{}
	topics := map[string]*item{}
	stores := map[string]*item{}
	read := map[string]bool{}
	for _, st := range g.Subtopologies {
		for _, n := range st.Nodes {
			if n.Kind == "source" {
				for _, t := range n.Topics {
					read[t] = true
				}
			}
		}
	}
	internal := map[string]bool{}
	for _, t := range g.Topics {
		internal[t.Name] = t.Internal
	}
	newTopic := func(name string) *item {
		title := "Topic: " + name
		if internal[name] {
			title = "Internal topic: " + name + " (<application.id>-" + name + " at run time)"
		}
		it := newItem(topic, name, title)
		topics[name] = it
		return it
	}
	storeSpec := map[string]topology.GraphStore{}
	for _, s := range g.Stores {
		storeSpec[s.Name] = s
	}
	newStore := func(name string) *item {
		s := storeSpec[name]
		title := fmt.Sprintf("Store: %s (%s", name, s.Kind)
		if s.InMemory {
			title += ", in memory"
		}
		if s.Changelog != "" {
			title += ", changelog " + s.Changelog
		}
		it := newItem(store, name, title+")")
		stores[name] = it
		return it
	}
	addRow := func(row []*item) {
		for _, it := range row {
			it.row = len(l.rows)
		}
		l.rows = append(l.rows, row)
	}

	var between []*item // topics below the last sub-topology, above the next
	for _, st := range g.Subtopologies {
		// Topics this sub-topology reads, unless an earlier row holds them.
		above := between
		between = nil
		for _, n := range st.Nodes {
			if n.Kind != "source" {
				continue
			}
			for _, t := range n.Topics {
				if topics[t] == nil {
					above = append(above, newTopic(t))
				}
			}
		}
		if len(above) > 0 {
			addRow(above)
		}

		// Its nodes, a row per distance from the sources.
		c := cluster{id: st.ID, firstRow: len(l.rows)}
		byName := map[string]topology.GraphNode{}
		for _, n := range st.Nodes {
			byName[n.Name] = n
		}
		depth := map[string]int{}
		var depthOf func(name string) int
		depthOf = func(name string) int {
			if d, ok := depth[name]; ok {
				return d
			}
			depth[name] = 0 // guards against cycles
			d := 0
			for _, p := range byName[name].Predecessors {
				d = max(d, depthOf(p)+1)
			}
			depth[name] = d
			return d
		}
		var rows [][]*item
		for _, n := range st.Nodes { // Describe's order: by depth, then name
			it := newItem(nodeKind(n.Kind), n.Name, nodeTitle(n))
			nodes[n.Name] = it
			d := depthOf(n.Name)
			for len(rows) <= d {
				rows = append(rows, nil)
			}
			rows[d] = append(rows[d], it)
		}
		for _, n := range st.Nodes {
			me := nodes[n.Name]
			for _, t := range n.Topics {
				if n.Kind == "source" {
					me.inputs = append(me.inputs, topics[t])
					l.arrows = append(l.arrows, arrow{from: topics[t], to: me})
				}
			}
			for _, p := range n.Predecessors {
				me.inputs = append(me.inputs, nodes[p])
			}
			for _, s := range n.Successors {
				l.arrows = append(l.arrows, arrow{from: me, to: nodes[s]})
			}
		}
		for _, row := range rows {
			if len(row) == 0 {
				continue
			}
			var withStores []*item
			for _, it := range row {
				withStores = append(withStores, it)
				for _, s := range byName[it.name].Stores {
					if _, ok := storeSpec[s]; !ok {
						continue
					}
					si := stores[s]
					if si == nil {
						si = newStore(s)
						si.inputs = []*item{it}
						withStores = append(withStores, si)
					}
					l.arrows = append(l.arrows, arrow{from: it, to: si, store: true})
				}
			}
			addRow(withStores)
		}
		c.lastRow = len(l.rows) - 1
		l.clusters = append(l.clusters, c)

		// Topics it writes that no sub-topology reads.
		for _, n := range st.Nodes {
			if n.Kind != "sink" {
				continue
			}
			for _, t := range n.Topics {
				if topics[t] == nil && !read[t] {
					between = append(between, newTopic(t))
				}
			}
		}
	}
	if len(between) > 0 {
		addRow(between)
	}
	// Every topic has its item now, even those a sink writes and a later
	// sub-topology reads.
	for _, st := range g.Subtopologies {
		for _, n := range st.Nodes {
			if n.Kind != "sink" {
				continue
			}
			for _, t := range n.Topics {
				topics[t].inputs = append(topics[t].inputs, nodes[n.Name])
				l.arrows = append(l.arrows, arrow{from: nodes[n.Name], to: topics[t]})
			}
		}
	}
	var loose []*item // stores no processor uses
	for _, s := range g.Stores {
		if stores[s.Name] == nil {
			loose = append(loose, newStore(s.Name))
		}
	}
	if len(loose) > 0 {
		addRow(loose)
	}
	for i := range l.arrows {
		a := &l.arrows[i]
		prev := a.from
		for r := a.from.row + 1; r < a.to.row; r++ {
			w := &item{kind: waypoint, w: 4, row: r, inputs: []*item{prev}}
			l.rows[r] = append(l.rows[r], w)
			a.via = append(a.via, w)
			prev = w
		}
		if prev != a.from { // a.to lines up under its last waypoint
			for j, in := range a.to.inputs {
				if in == a.from {
					a.to.inputs[j] = prev
					break
				}
			}
		}
	}
	l.place()
	return l
}

func nodeKind(kind string) itemKind {
	switch kind {
	case "source":
		return source
	case "sink":
		return sink
	}
	return processor
}

func nodeTitle(n topology.GraphNode) string {
	switch n.Kind {
	case "source":
		return fmt.Sprintf("Source: %s (topics: %s)", n.Name, strings.Join(n.Topics, ", "))
	case "sink":
		if n.TopicExtractor {
			return "Sink: " + n.Name + " (topic chosen per record)"
		}
		return "Sink: " + n.Name + " (topic: " + strings.Join(n.Topics, ", ") + ")"
	}
	return fmt.Sprintf("Processor: %s (stores: %s)", n.Name, strings.Join(n.Stores, ", "))
}

// place sets every item's position and the picture's size.
func (l *layout) place() {
	inner := 0.0
	for _, row := range l.rows {
		inner = max(inner, rowWidth(row))
	}
	inner *= 1.15 // room for the widest rows to line up under their inputs too
	left := float64(margin + clusterPad)
	l.width = inner + 2*left
	right := l.width - left

	y := float64(margin)
	for r, row := range l.rows {
		for i := range l.clusters {
			if c := &l.clusters[i]; c.firstRow == r {
				c.top = y
				y += clusterHead
			}
		}
		placeRow(row, left, right, y)
		y += itemHeight
		for i := range l.clusters {
			if c := &l.clusters[i]; c.lastRow == r {
				y += clusterPad
				c.bottom = y
			}
		}
		y += rowGap
	}
	l.height = max(y-rowGap, margin) + margin
}

func rowWidth(row []*item) float64 {
	w := 0.0
	for _, it := range row {
		w += it.w
	}
	return w + float64(len(row)-1)*itemGap
}

// placeRow puts a row's items under the mean x of their inputs in earlier
// rows (items without one share out the row as if it were centred), in
// that order, a store right of its processor, then pushes them apart and
// back inside [left, right].
func placeRow(row []*item, left, right, y float64) {
	want := make(map[*item]float64, len(row))
	x := left + (right-left-rowWidth(row))/2
	for _, it := range row {
		want[it] = x + it.w/2
		x += it.w + itemGap
	}
	key := make(map[*item]float64, len(row)) // the order
	for _, it := range row {
		sum, n := 0.0, 0
		for _, in := range it.inputs {
			if in.row < it.row {
				sum += in.cx()
				n++
			}
		}
		if n > 0 {
			want[it] = sum / float64(n)
		}
		key[it] = want[it]
		if it.kind == store && len(it.inputs) == 1 && it.inputs[0].row == it.row {
			// Right of its processor, which comes before it in the row.
			p := it.inputs[0]
			want[it] = want[p] + p.w/2 + itemGap + it.w/2
			key[it] = key[p]
		}
	}
	sort.SliceStable(row, func(i, j int) bool { return key[row[i]] < key[row[j]] })
	x = left
	for _, it := range row {
		it.x = max(x, want[it]-it.w/2)
		it.y = y
		x = it.x + it.w + itemGap
	}
	bound := right
	for i := len(row) - 1; i >= 0; i-- {
		it := row[i]
		it.x = min(it.x, bound-it.w)
		bound = it.x - itemGap
	}
}

// SVG draws the graph as an SVG element: each node, topic and store a <g>
// of class "node source|processor|sink", "topic" or "store" with its name
// in data-name, each sub-topology a <g class="subtopology">.
func SVG(g topology.Graph) string {
	l := build(g)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="ui-monospace, monospace" font-size="12">`+"\n",
		l.width, l.height, l.width, l.height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#64748b"/></marker></defs>` + "\n")
	for _, c := range l.clusters {
		fmt.Fprintf(&b, `<g class="subtopology" data-id="%d"><rect x="%d" y="%.1f" width="%.1f" height="%.1f" rx="6" fill="#f8fafc" stroke="#cbd5e1"/>`+
			`<text x="%d" y="%.1f" fill="#475569" font-family="system-ui, sans-serif" font-size="12">Sub-topology: %d</text></g>`+"\n",
			c.id, margin, c.top, l.width-2*margin, c.bottom-c.top, margin+8, c.top+15, c.id)
	}
	for _, a := range l.arrows {
		b.WriteString(edgePath(a))
	}
	for _, row := range l.rows {
		for _, it := range row {
			if it.kind != waypoint {
				b.WriteString(shape(it))
			}
		}
	}
	b.WriteString("</svg>")
	return b.String()
}

func edgePath(a arrow) string {
	f, t := a.from, a.to
	var d strings.Builder
	// down draws a vertical S-curve from (x1, y1) down to (x2, y2).
	down := func(x1, y1, x2, y2 float64) {
		fmt.Fprintf(&d, " C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1, (y1+y2)/2, x2, (y1+y2)/2, x2, y2)
	}
	switch {
	case f.row == t.row: // a processor and its store, side by side
		x1, x2 := f.x+f.w, t.x
		if t.x < f.x {
			x1, x2 = f.x, t.x+t.w
		}
		fmt.Fprintf(&d, "M%.1f,%.1f L%.1f,%.1f", x1, f.y+itemHeight/2, x2, t.y+itemHeight/2)
	case f.row < t.row:
		x, y := f.cx(), f.y+itemHeight
		fmt.Fprintf(&d, "M%.1f,%.1f", x, y)
		for _, w := range a.via {
			down(x, y, w.cx(), w.y)
			x, y = w.cx(), w.y+itemHeight
			fmt.Fprintf(&d, " L%.1f,%.1f", x, y)
		}
		down(x, y, t.cx(), t.y)
	default: // back up, to an item in an earlier row
		fmt.Fprintf(&d, "M%.1f,%.1f", f.cx(), f.y)
		y1, y2 := f.y, t.y+itemHeight
		fmt.Fprintf(&d, " C%.1f,%.1f %.1f,%.1f %.1f,%.1f", f.cx(), (y1+y2)/2, t.cx(), (y1+y2)/2, t.cx(), y2)
	}
	class, extra := "edge", ""
	if a.store {
		class, extra = "edge store-edge", ` stroke-dasharray="4 3"`
	}
	return fmt.Sprintf(`<path class="%s" d="%s" fill="none" stroke="#64748b" stroke-width="1.3"%s marker-end="url(#arrow)"/>`+"\n", class, d.String(), extra)
}

var colors = map[itemKind][2]string{ // fill, stroke
	source:    {"#dcfce7", "#15803d"},
	processor: {"#dbeafe", "#1d4ed8"},
	sink:      {"#fef3c7", "#b45309"},
	topic:     {"#f1f5f9", "#475569"},
	store:     {"#f3e8ff", "#7e22ce"},
}

var classes = map[itemKind]string{
	source: "node source", processor: "node processor", sink: "node sink", topic: "topic", store: "store",
}

func shape(it *item) string {
	fill, stroke := colors[it.kind][0], colors[it.kind][1]
	paint := fmt.Sprintf(` fill="%s" stroke="%s"`, fill, stroke)
	x, y, w, h := it.x, it.y, it.w, float64(itemHeight)
	var body string
	switch it.kind {
	case topic:
		body = fmt.Sprintf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f"%s/>`, x+skew, y, x+w, y, x+w-skew, y+h, x, y+h, paint)
	case store: // a cylinder: its outline, then the front of its lid
		const ry = 5
		body = fmt.Sprintf(`<path d="M%.1f,%.1f a%.1f,%d 0 0 1 %.1f,0 v%.1f a%.1f,%d 0 0 1 %.1f,0 z"%s/>`, x, y+ry, w/2, ry, w, h-2*ry, w/2, ry, -w, paint) +
			fmt.Sprintf(`<path d="M%.1f,%.1f a%.1f,%d 0 0 0 %.1f,0" fill="none" stroke="%s"/>`, x, y+ry, w/2, ry, w, stroke)
	default:
		rx := 3
		if it.kind != processor {
			rx = 12
		}
		body = fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%d"%s/>`, x, y, w, h, rx, paint)
	}
	ty := y + h/2 + 4
	if it.kind == store {
		ty += 2
	}
	name := html.EscapeString(it.name)
	return fmt.Sprintf(`<g class="%s" data-name="%s"><title>%s</title>%s<text x="%.1f" y="%.1f" text-anchor="middle" fill="#0f172a">%s</text></g>`+"\n",
		classes[it.kind], name, html.EscapeString(it.title), body, it.cx(), ty, name)
}
