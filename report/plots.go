package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Sizes of the distribution and heat map images, in pixels.
const (
	distWidth, distHeight = 1200, 330
	heatWidth, heatHeight = 600, 420
)

// seriesColours tell the series of one plot apart (procs blue, sim
// orange in a --compare).
var seriesColours = []color.RGBA{{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0x94, 0x67, 0xbd, 0xff}}

var windowGreen = color.NRGBA{0x2c, 0xa0, 0x2c, 0x38}

// newPlot is a plot in the sans-serif face (gonum's default is serif),
// set per plot: the library's DefaultFont is global state.
func newPlot() *plot.Plot {
	p := plot.New()
	for _, st := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle,
		&p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		st.Font.Variant = "Sans"
	}
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Title.TextStyle.Font.Weight = xfont.WeightBold
	return p
}

func encodePNG(c *vgimg.Canvas) ([]byte, error) {
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return nil, fmt.Errorf("report: encoding a PNG: %w", err)
	}
	return b.Bytes(), nil
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

// distribution draws a measure's histogram (left) and CDF (right), every
// series on both, the window shaded.
func distribution(m Measure) ([]byte, error) {
	var all []float64
	for _, s := range m.Series {
		for _, v := range s.Values {
			all = append(all, msf(v))
		}
	}
	lo, hi := 0.0, 1.0
	if len(all) > 0 {
		lo, hi = slices.Min(all), slices.Max(all)
	}
	if m.Window.Hi > 0 {
		lo, hi = math.Min(lo, msf(m.Window.Lo)), math.Max(hi, msf(m.Window.Hi))
	}
	pad := math.Max((hi-lo)*0.05, 1)
	lo, hi = math.Max(0, lo-pad), hi+pad

	hist := newPlot()
	hist.Title.Text = m.Name + ": histogram"
	hist.X.Label.Text = "ms"
	hist.Y.Label.Text = "runs"
	cdf := newPlot()
	cdf.Title.Text = m.Name + ": CDF"
	cdf.X.Label.Text = "ms"
	cdf.Y.Label.Text = "share of values ≤ x"
	cdf.Y.Min, cdf.Y.Max = 0, 1
	for _, p := range []*plot.Plot{hist, cdf} {
		p.X.Min, p.X.Max = lo, hi
		p.X.Tick.Marker = roundTicks{}
		p.Add(plotter.NewGrid())
		p.Legend.TextStyle.Font.Size = vg.Points(9)
		p.Legend.Padding = vg.Points(3)
	}
	hist.Legend.Top, hist.Legend.Left = true, true
	hist.Y.Tick.Marker = countTicks{}
	if m.Window.Hi > 0 {
		w := &windowShade{lo: msf(m.Window.Lo), hi: msf(m.Window.Hi)}
		hist.Add(w)
		cdf.Add(w)
		text := "window"
		if m.Window.Text != "" {
			text = "window " + m.Window.Text
		}
		hist.Legend.Add(text, w)
	}
	bins := 30
	width := (hi - lo) / float64(bins)
	maxCount := 1.0
	for i, s := range m.Series {
		col := seriesColours[i%len(seriesColours)]
		counts := make([]float64, bins)
		vals := make([]float64, 0, len(s.Values))
		for _, v := range s.Values {
			x := msf(v)
			vals = append(vals, x)
			b := min(bins-1, max(0, int((x-lo)/width)))
			counts[b]++
		}
		h := &plotter.Histogram{Width: width, FillColor: color.NRGBA{col.R, col.G, col.B, 0x80}}
		h.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(0.8)}
		for b, n := range counts {
			h.Bins = append(h.Bins, plotter.HistogramBin{Min: lo + float64(b)*width, Max: lo + float64(b+1)*width, Weight: n})
			maxCount = math.Max(maxCount, n)
		}
		hist.Add(h)
		label := fmt.Sprintf("%s (n %d)", s.Label, len(vals))
		hist.Legend.Add(label, h)
		if len(vals) == 0 {
			continue
		}
		slices.Sort(vals)
		pts := plotter.XYs{{X: lo, Y: 0}}
		for j, x := range vals {
			pts = append(pts, plotter.XY{X: x, Y: float64(j) / float64(len(vals))}, plotter.XY{X: x, Y: float64(j+1) / float64(len(vals))})
		}
		pts = append(pts, plotter.XY{X: hi, Y: 1})
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("report: CDF of %s: %w", m.Name, err)
		}
		line.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.8)}
		cdf.Add(line)
		cdf.Legend.Add(label, line)
	}
	hist.Y.Min, hist.Y.Max = 0, maxCount*1.25
	c := vgimg.NewWith(vgimg.UseWH(px(distWidth), px(distHeight)), vgimg.UseDPI(dpi))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: px(24), PadTop: px(8), PadBottom: px(8), PadLeft: px(8), PadRight: px(16)}
	hist.Draw(tiles.At(dc, 0, 0))
	cdf.Draw(tiles.At(dc, 1, 0))
	return encodePNG(c)
}

// countTicks are whole numbers (a histogram counts runs).
type countTicks struct{}

func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	step := math.Max(1, math.Ceil((hi-lo)/8))
	var out []plot.Tick
	for v := math.Ceil(lo); v <= hi; v += step {
		out = append(out, plot.Tick{Value: v, Label: fmt.Sprint(v)})
	}
	return out
}

// windowShade fills the window's range over the whole height.
type windowShade struct{ lo, hi float64 }

func (w *windowShade) Plot(c draw.Canvas, p *plot.Plot) {
	xf, _ := p.Transforms(&c)
	l, r := max(xf(w.lo), c.Min.X), min(xf(w.hi), c.Max.X)
	c.FillPolygon(windowGreen, []vg.Point{{X: l, Y: c.Min.Y}, {X: r, Y: c.Min.Y}, {X: r, Y: c.Max.Y}, {X: l, Y: c.Max.Y}})
	edge := draw.LineStyle{Color: color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
	for _, x := range []float64{w.lo, w.hi} {
		if xx := xf(x); xx >= c.Min.X && xx <= c.Max.X {
			c.StrokeLine2(edge, xx, c.Min.Y, xx, c.Max.Y)
		}
	}
}

// Thumbnail is the legend's swatch.
func (w *windowShade) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(windowGreen, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}

// grid is a Grid's values as a heat map's GridXYZ; rows are drawn top
// to bottom in the Grid's order.
type grid struct {
	z    [][]float64
	rows int
}

func (g grid) Dims() (c, r int) { return len(g.z[0]), g.rows }
func (g grid) Z(c, r int) float64 {
	return g.z[g.rows-1-r][c]
}
func (g grid) X(c int) float64 { return float64(c) }
func (g grid) Y(r int) float64 { return float64(r) }

// heatMap draws one of a sweep's values over its grid, each cell
// labelled with its value ("skipped" where the settings service refused it, "none measured" where nothing was).
func heatMap(g *Grid, title, unit string, z [][]float64) ([]byte, error) {
	p := newPlot()
	p.Title.Text = title
	p.X.Label.Text = g.ColField
	p.Y.Label.Text = g.RowField
	gz := grid{z: z, rows: len(g.Rows)}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, row := range z {
		for _, v := range row {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi <= lo {
		hi = lo + 1
	}
	pal := moreland.SmoothBlueRed()
	pal.SetMin(lo)
	pal.SetMax(hi)
	hm := plotter.NewHeatMap(gz, pal.Palette(64))
	hm.Min, hm.Max = lo, hi
	hm.NaN = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	p.Add(hm)
	var labels plotter.XYLabels
	var dark []bool // the cell's colour is dark: its label is white
	for r, row := range z {
		for c, v := range row {
			n := (v - lo) / (hi - lo)
			dark = append(dark, !math.IsNaN(v) && (n < 0.22 || n > 0.82))
			s := "none measured"
			if r < len(g.Skipped) && c < len(g.Skipped[r]) && g.Skipped[r][c] {
				s = "skipped"
			}
			if !math.IsNaN(v) {
				s = fmt.Sprintf("%.3g%s", v, unit)
				if math.Abs(v) >= 100 {
					s = fmt.Sprintf("%.0f%s", v, unit)
				}
			}
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(c), Y: float64(len(g.Rows) - 1 - r)})
			labels.Labels = append(labels.Labels, s)
		}
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, fmt.Errorf("report: heat map labels: %w", err)
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
		l.TextStyle[i].Font.Size = vg.Points(10)
		l.TextStyle[i].Font.Variant = "Sans"
		l.TextStyle[i].Color = color.Black
		if dark[i] {
			l.TextStyle[i].Color = color.White
		}
	}
	p.Add(l)
	p.NominalX(g.Cols...)
	rowNames := slices.Clone(g.Rows)
	slices.Reverse(rowNames)
	p.NominalY(rowNames...)
	p.X.Min, p.X.Max = -0.5, float64(len(g.Cols))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(g.Rows))-0.5

	// A colour bar under the map.
	bar := newPlot()
	bar.HideY()
	bar.X.Label.Text = title + " (" + strings.TrimSpace(unit) + ")"
	bar.Add(&plotter.ColorBar{ColorMap: pal})
	bar.X.Min, bar.X.Max = lo, hi
	bar.X.Tick.Marker = roundTicks{}

	c := vgimg.NewWith(vgimg.UseWH(px(heatWidth), px(heatHeight)), vgimg.UseDPI(dpi))
	dc := draw.New(c)
	top := draw.Crop(dc, 0, 0, px(80), 0)
	p.Draw(top)
	bottom := draw.Crop(dc, px(40), -px(40), 0, -(dc.Max.Y - dc.Min.Y - px(70)))
	bar.Draw(bottom)
	return encodePNG(c)
}
