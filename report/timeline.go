package report

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Pixel geometry of a timeline image: a fixed width and a height that
// grows with the rows, at 96 dots per inch.
const (
	dpi           = 96
	timelineWidth = 1200 // px
	rowHeight     = 34   // px per lane
	timelinePad   = 70   // px: title and time axis
)

// px is a length in image pixels.
func px(n float64) vg.Length { return vg.Length(n * 72 / dpi) }

// overlay is an HTML element laid over a plot image, in image pixels
// from the top left: what the browser shows a tooltip for and a test
// counts.
type overlay struct {
	Class  string
	Data   [][2]string // data-* attributes, in order
	Title  string
	X0, Y0 float64
	X1, Y1 float64
}

// rows are a timeline's lanes, top to bottom: every node, then every
// shard.
type rows struct {
	nodes  []string
	shards int
}

func runRows(r Run) rows {
	nodes := slices.Concat(r.Masters, r.Coreapps, []string{"settings"})
	for _, f := range r.Faults {
		if !slices.Contains(nodes, f.Node) {
			nodes = append(nodes, f.Node)
		}
	}
	for _, d := range r.Declarations {
		if !slices.Contains(nodes, d.Coreapp) {
			nodes = append(nodes, d.Coreapp)
		}
	}
	shards := r.Shards
	for _, s := range r.Sessions {
		shards = max(shards, s.Shard+1)
	}
	return rows{nodes: nodes, shards: shards}
}

func (rs rows) count() int { return len(rs.nodes) + rs.shards }

// y is the plot's y of a row counted from the top.
func (rs rows) y(i int) float64 { return float64(rs.count() - 1 - i) }

func (rs rows) node(id string) float64 { return rs.y(slices.Index(rs.nodes, id)) }

func (rs rows) shard(s int) float64 { return rs.y(len(rs.nodes) + s) }

func (rs rows) labels() []string {
	out := make([]string, rs.count())
	for i, n := range rs.nodes {
		out[rs.count()-1-i] = n
	}
	for s := range rs.shards {
		out[rs.count()-1-len(rs.nodes)-s] = fmt.Sprintf("shard %d", s)
	}
	return out
}

// Colours. Owners get the Tableau 10 colours without its red, which
// marks violations alone.
var (
	ownerColours = []color.RGBA{
		{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0x59, 0xa1, 0x4f, 0xff},
		{0xb0, 0x7a, 0xa1, 0xff}, {0x76, 0xb7, 0xb2, 0xff}, {0xed, 0xc9, 0x48, 0xff},
		{0x9c, 0x75, 0x5f, 0xff}, {0xff, 0x9d, 0xa7, 0xff}, {0xba, 0xb0, 0xac, 0xff},
	}
	violationRed = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	// Translucent colours are NRGBA: color.RGBA is alpha-premultiplied.
	downtimeRed  = color.NRGBA{0xd6, 0x27, 0x28, 0x40}
	termColour   = color.RGBA{0x5b, 0x6b, 0x82, 0xff}
	markColour   = color.RGBA{0x22, 0x22, 0x22, 0xff}
	stripe       = color.RGBA{0xf3, 0xf4, 0xf6, 0xff}
	faultColours = map[string]color.NRGBA{
		"kill":  {0x40, 0x40, 0x40, 0x55},
		"stop":  {0x80, 0x80, 0x80, 0x55},
		"pause": {0xf0, 0xa2, 0x02, 0x66},
		"cut":   {0x8e, 0x6c, 0xc0, 0x55},
		"clock": {0x2a, 0x9d, 0x8f, 0x55},
		"delay": {0x4e, 0x79, 0xa7, 0x30},
		"loss":  {0x4e, 0x79, 0xa7, 0x30},
	}
)

// ownerColour is a coreapp's colour: its place among the run's coreapps.
func ownerColour(r Run, id string) color.RGBA {
	i := slices.Index(r.Coreapps, id)
	if i < 0 {
		return ownerColours[len(ownerColours)-1]
	}
	return ownerColours[i%(len(ownerColours)-1)]
}

func faultColour(kind string) color.NRGBA {
	if c, ok := faultColours[kind]; ok {
		return c
	}
	return faultColours["kill"]
}

// hexColour is c as CSS.
func hexColour(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func secs(d time.Duration) float64 { return d.Seconds() }

// msText is a moment or length in milliseconds to the microsecond.
func msText(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

// endOf is a span's end, the run's end when it did not end.
func endOf(end time.Duration, r Run) time.Duration {
	if end <= 0 || end > r.Duration {
		return r.Duration
	}
	return end
}

// timeline draws one run's timeline and returns the PNG and the elements
// to lay over it (pixel boxes).
func timeline(r Run) (png []byte, w, h int, ovs []overlay, err error) {
	rs := runRows(r)
	w, h = timelineWidth, timelinePad+rowHeight*rs.count()
	p := newPlot()
	p.Title.Text = fmt.Sprintf("%s (seed %d, %s)", r.Name, r.Seed, r.Target)
	p.X.Label.Text = "time since the run's start (s)"
	// A margin after the run's end keeps marks at the end in view.
	p.X.Min, p.X.Max = 0, math.Max(secs(r.Duration), 0.001)*1.03
	p.Y.Min, p.Y.Max = -0.5, float64(rs.count())-0.5
	p.NominalY(rs.labels()...)
	p.Add(&timelinePlotter{r: r, rs: rs})
	p.X.Tick.Marker = secondTicks{}

	c := vgimg.NewWith(vgimg.UseWH(px(float64(w)), px(float64(h))), vgimg.UseDPI(dpi))
	dc := draw.New(c)
	p.Draw(dc)
	da := p.DataCanvas(dc)
	xf, yf := p.Transforms(&da)
	toPX := func(x, y float64) (float64, float64) {
		return float64(xf(x)) * dpi / 72, float64(h) - float64(yf(y))*dpi/72
	}
	ovs = timelineOverlays(r, rs, toPX)
	png, err = encodePNG(c)
	return png, w, h, ovs, err
}

// niceStep is a round step (1, 2 or 5 × 10^k) that cuts span into at
// most n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	step := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= float64(n) {
			return step * m
		}
	}
	return step * 10
}

// roundTicks are ticks at a round step with major labels, for an axis
// in milliseconds.
type roundTicks struct{}

func (roundTicks) Ticks(lo, hi float64) []plot.Tick {
	step := niceStep(hi-lo, 8)
	var out []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, plot.Tick{Value: v, Label: fmt.Sprintf("%g", math.Round(v*1000)/1000)})
		if minor := v + step/2; minor <= hi {
			out = append(out, plot.Tick{Value: minor})
		}
	}
	return out
}

// secondTicks are ticks at whole seconds (a round step for the range),
// labelled in seconds.
type secondTicks struct{}

func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	step := 1.0
	for _, s := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600} {
		step = s
		if span/s <= 16 {
			break
		}
	}
	var out []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		label := fmt.Sprintf("%g", math.Round(v*10)/10)
		out = append(out, plot.Tick{Value: v, Label: label})
	}
	return out
}

// timelinePlotter draws the lanes' contents.
type timelinePlotter struct {
	r  Run
	rs rows
}

func (t *timelinePlotter) Plot(c draw.Canvas, plt *plot.Plot) {
	r, rs := t.r, t.rs
	xf, yf := plt.Transforms(&c)
	rect := func(x0, x1, y0, y1 float64, fill color.Color) {
		l, rr := xf(x0), xf(x1)
		if rr-l < px(2) {
			rr = l + px(2)
		}
		c.FillPolygon(fill, []vg.Point{{X: l, Y: yf(y0)}, {X: rr, Y: yf(y0)}, {X: rr, Y: yf(y1)}, {X: l, Y: yf(y1)}})
	}
	label := plt.Y.Tick.Label
	label.Font.Size = vg.Points(8.5)
	label.XAlign, label.YAlign = draw.XLeft, draw.YCenter
	text := func(x, y float64, s string, col color.Color, maxW vg.Length) {
		st := label
		st.Color = col
		if st.Width(s) > maxW {
			return
		}
		c.FillText(st, vg.Point{X: xf(x) + px(4), Y: yf(y)}, s)
	}
	end := secs(r.Duration)
	// Alternate stripes; a rule between the nodes and the shards.
	for i := range rs.count() {
		if i%2 == 0 {
			rect(0, end, rs.y(i)-0.5, rs.y(i)+0.5, stripe)
		}
	}
	sep := rs.y(len(rs.nodes)) + 0.5
	c.StrokeLine2(draw.LineStyle{Color: color.Gray{0x99}, Width: px(1)}, xf(0), yf(sep), xf(end), yf(sep))
	// The run's end.
	c.StrokeLine2(draw.LineStyle{Color: color.Gray{0x66}, Width: px(1), Dashes: []vg.Length{px(4), px(3)}},
		xf(end), c.Min.Y, xf(end), c.Max.Y)

	for _, tm := range r.Terms {
		y := rs.node(tm.Master)
		rect(secs(tm.Start), secs(endOf(tm.End, r)), y-0.26, y+0.18, termColour)
		text(secs(tm.Start), y-0.04, fmt.Sprintf("primary, lease epoch %d", tm.Epoch), color.White, xf(secs(endOf(tm.End, r)))-xf(secs(tm.Start))-px(8))
	}
	for _, f := range r.Faults {
		y := rs.node(f.Node)
		rect(secs(f.Start), secs(endOf(f.End, r)), y-0.45, y+0.45, faultColour(f.Kind))
		text(secs(f.Start), y+0.32, f.Kind, markColour, xf(secs(endOf(f.End, r)))-xf(secs(f.Start)))
	}
	for _, s := range r.Sessions {
		if s.Shard >= rs.shards {
			continue
		}
		y := rs.shard(s.Shard)
		x0, x1 := secs(s.Start), secs(endOf(s.End, r))
		rect(x0, x1, y-0.32, y+0.32, ownerColour(r, s.Coreapp))
		for _, q := range s.Silent {
			rect(secs(q[0]), secs(endOf(q[1], r)), y-0.32, y+0.32, color.NRGBA{0xff, 0xff, 0xff, 0xb0})
		}
		text(x0, y, fmt.Sprintf("%s (epoch %d)", s.Coreapp, s.Epoch), color.White, xf(x1)-xf(x0)-px(8))
	}
	for _, fo := range r.Failovers {
		if fo.Shard >= rs.shards {
			continue
		}
		y := rs.shard(fo.Shard)
		rect(secs(fo.ServedUntil), secs(fo.ServedAgain), y-0.45, y+0.45, downtimeRed)
		c.DrawGlyph(draw.GlyphStyle{Color: markColour, Radius: px(6), Shape: draw.PyramidGlyph{}},
			vg.Point{X: xf(secs(fo.ServedAgain)), Y: yf(y + 0.5)})
	}
	for _, d := range r.Declarations {
		c.DrawGlyph(draw.GlyphStyle{Color: markColour, Radius: px(7), Shape: draw.CrossGlyph{}},
			vg.Point{X: xf(secs(d.At)), Y: yf(rs.node(d.Coreapp))})
	}
	for _, tk := range r.Takeovers {
		c.DrawGlyph(draw.GlyphStyle{Color: markColour, Radius: px(6), Shape: draw.BoxGlyph{}},
			vg.Point{X: xf(secs(tk.At)), Y: yf(rs.node(tk.To))})
	}
	for _, ch := range r.Changes {
		c.DrawGlyph(draw.GlyphStyle{Color: markColour, Radius: px(5), Shape: draw.RingGlyph{}},
			vg.Point{X: xf(secs(ch.At)), Y: yf(rs.node("settings"))})
	}
	for _, v := range r.Violations {
		x := xf(secs(v.At))
		c.StrokeLine2(draw.LineStyle{Color: violationRed, Width: px(2)}, x, c.Min.Y, x, c.Max.Y)
		c.DrawGlyph(draw.GlyphStyle{Color: violationRed, Radius: px(6), Shape: draw.CircleGlyph{}}, vg.Point{X: x, Y: yf(float64(rs.count()) - 0.75)})
	}
}

// DataRange leaves the axes as timeline set them.
func (t *timelinePlotter) DataRange() (xmin, xmax, ymin, ymax float64) {
	return 0, math.Max(secs(t.r.Duration), 0.001) * 1.03, -0.5, float64(t.rs.count()) - 0.5
}

// timelineOverlays are the elements laid over the image: a lane per
// row, and a box or marker per span and event, each with its exact
// times in its title.
func timelineOverlays(r Run, rs rows, toPX func(x, y float64) (float64, float64)) []overlay {
	var out []overlay
	box := func(class string, data [][2]string, title string, x0, x1, y0, y1 float64) {
		l, top := toPX(x0, y1)
		rr, bot := toPX(x1, y0)
		out = append(out, overlay{Class: class, Data: data, Title: title, X0: l, Y0: top, X1: max(rr, l+2), Y1: bot})
	}
	marker := func(class string, data [][2]string, title string, x, y float64) {
		cx, cy := toPX(x, y)
		out = append(out, overlay{Class: "marker " + class, Data: data, Title: title, X0: cx - 7, Y0: cy - 7, X1: cx + 7, Y1: cy + 7})
	}
	end := secs(r.Duration)
	for _, n := range rs.nodes {
		y := rs.node(n)
		box("lane", [][2]string{{"node", n}}, n, 0, end, y-0.5, y+0.5)
	}
	for s := range rs.shards {
		y := rs.shard(s)
		box("shard-lane", [][2]string{{"shard", fmt.Sprint(s)}}, fmt.Sprintf("shard %d at the gateway", s), 0, end, y-0.5, y+0.5)
	}
	for _, f := range r.Faults {
		y := rs.node(f.Node)
		e := endOf(f.End, r)
		box("span fault", [][2]string{{"node", f.Node}, {"kind", f.Kind}, {"start-ms", msNum(f.Start)}, {"end-ms", msNum(e)}},
			fmt.Sprintf("%s %s: %s → %s (%s)", f.Kind, f.Node, msText(f.Start), msText(e), msText(e-f.Start)),
			secs(f.Start), secs(e), y-0.45, y+0.45)
	}
	for _, tm := range r.Terms {
		y := rs.node(tm.Master)
		e := endOf(tm.End, r)
		box("span term", [][2]string{{"node", tm.Master}, {"epoch", fmt.Sprint(tm.Epoch)}, {"start-ms", msNum(tm.Start)}, {"end-ms", msNum(e)}},
			fmt.Sprintf("%s primary (lease epoch %d): %s → %s", tm.Master, tm.Epoch, msText(tm.Start), msText(e)),
			secs(tm.Start), secs(e), y-0.26, y+0.18)
	}
	for _, s := range r.Sessions {
		if s.Shard >= rs.shards {
			continue
		}
		y := rs.shard(s.Shard)
		e := endOf(s.End, r)
		title := fmt.Sprintf("shard %d session of %s, epoch %d: %s → %s", s.Shard, s.Coreapp, s.Epoch, msText(s.Start), msText(e))
		for _, q := range s.Silent {
			title += fmt.Sprintf("; not heard %s → %s", msText(q[0]), msText(endOf(q[1], r)))
		}
		box("span session", [][2]string{{"shard", fmt.Sprint(s.Shard)}, {"owner", s.Coreapp}, {"epoch", fmt.Sprint(s.Epoch)}, {"start-ms", msNum(s.Start)}, {"end-ms", msNum(e)}},
			title, secs(s.Start), secs(e), y-0.32, y+0.32)
	}
	for _, fo := range r.Failovers {
		if fo.Shard >= rs.shards {
			continue
		}
		marker("failover", [][2]string{{"shard", fmt.Sprint(fo.Shard)}, {"from", fo.From}, {"to", fo.To}, {"ms", msNum(fo.ServedAgain)}},
			fmt.Sprintf("failover of shard %d: %s → %s (epoch %d), last served %s, served again %s, downtime %s",
				fo.Shard, fo.From, fo.To, fo.Epoch, msText(fo.ServedUntil), msText(fo.ServedAgain), msText(fo.ServedAgain-fo.ServedUntil)),
			secs(fo.ServedAgain), rs.shard(fo.Shard)+0.5)
	}
	for _, d := range r.Declarations {
		marker("declaration", [][2]string{{"node", d.Coreapp}, {"by", d.Master}, {"ms", msNum(d.At)}},
			fmt.Sprintf("%s declared %s unhealthy at %s", d.Master, d.Coreapp, msText(d.At)), secs(d.At), rs.node(d.Coreapp))
	}
	for _, tk := range r.Takeovers {
		marker("takeover", [][2]string{{"from", tk.From}, {"to", tk.To}, {"ms", msNum(tk.At)}},
			fmt.Sprintf("takeover: %s granted the lease (epoch %d) at %s, after %s", tk.To, tk.LeaseEpoch, msText(tk.At), orNone(tk.From)),
			secs(tk.At), rs.node(tk.To))
	}
	for _, ch := range r.Changes {
		marker("change", [][2]string{{"ms", msNum(ch.At)}}, fmt.Sprintf("%s at %s", ch.What, msText(ch.At)), secs(ch.At), rs.node("settings"))
	}
	for _, v := range r.Violations {
		marker("violation", [][2]string{{"invariant", v.Invariant}, {"ms", msNum(v.At)}},
			fmt.Sprintf("violation of %s at %s: %s", v.Invariant, msText(v.At), v.Details), secs(v.At), float64(rs.count())-0.75)
	}
	return out
}

func msNum(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func orNone(s string) string {
	if s == "" {
		return "no primary"
	}
	return s
}
