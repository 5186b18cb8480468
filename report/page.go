package report

// pageHTML is index.html: everything inline but the PNGs beside it.
// Overlay elements are positioned in percent of their image, so they
// stay on their marks when the image is scaled to the window.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", sans-serif; color: #1d2330; margin: 0; background: #fafbfc; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 20px 60px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #dde1e6; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
code, pre { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; }
pre.result { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 10px 12px; overflow-x: auto; }
.command { color: #4a5568; }
.runs-box { max-height: 260px; overflow-y: auto; border: 1px solid #dde1e6; border-radius: 6px; background: #fff; }
table.summary { border-collapse: collapse; width: 100%; font-size: 13px; }
table.summary td a, table.summary code.replay { white-space: nowrap; }
table.summary thead th { position: sticky; top: 0; }
table.summary th, table.summary td { padding: 4px 8px; border-bottom: 1px solid #eef0f3; text-align: left; vertical-align: top; }
table.summary th { background: #f1f3f5; font-weight: 600; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { display: inline-block; min-width: 40px; text-align: center; border-radius: 4px; font-weight: 700; font-size: 12px; padding: 1px 6px; }
.verdict.pass { background: #d9f2dc; color: #1b6b2a; }
.verdict.fail { background: #fde0e0; color: #b3191b; }
.counts { margin: 6px 0 14px; }
.timeline { position: relative; width: 100%; max-width: 1200px; background: #fff; border: 1px solid #dde1e6; border-radius: 6px; }
.timeline img { display: block; width: 100%; height: auto; }
.ov { position: absolute; box-sizing: border-box; }
.ov.lane, .ov.shard-lane { z-index: 1; }
.ov.span { z-index: 2; }
.ov.span:hover, .ov.lane:hover, .ov.shard-lane:hover { outline: 2px solid rgba(30,60,120,.45); }
.ov.marker { z-index: 3; border-radius: 50%; cursor: help; }
.ov.marker:hover { background: rgba(30,60,120,.25); }
.ov.violation:hover { background: rgba(214,39,40,.35); }
.readout { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; color: #4a5568; height: 18px; margin: 4px 2px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0; font-size: 12.5px; }
.legend span.key { display: inline-flex; align-items: center; gap: 5px; }
.legend i.swatch { display: inline-block; width: 18px; height: 11px; border: 1px solid rgba(0,0,0,.2); }
.legend .violation-key { color: #d62728; }
ul.verdicts { margin: 6px 0; padding-left: 20px; font-size: 13px; }
ul.verdicts li.bad { color: #b3191b; }
img.plot { display: block; width: 100%; height: auto; background: #fff; border: 1px solid #dde1e6; border-radius: 6px; margin-bottom: 14px; }
.heatmaps { display: flex; flex-wrap: wrap; gap: 14px; }
.heatmaps figure { margin: 0; flex: 1 1 480px; max-width: 600px; }
.heatmaps img.plot { margin: 0; }
#tip { position: fixed; pointer-events: none; background: #1d2330; color: #fff; font-size: 12px; padding: 5px 8px; border-radius: 4px; max-width: 460px; display: none; z-index: 10; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<div class="command">Made by <code>{{.Command}}</code></div>

<h2 id="summary">Summary</h2>
<div class="counts">{{len .Runs}} run(s), <b>{{.Failed}}</b> failed.</div>
{{if .Text}}<pre class="result">{{.Text}}</pre>{{end}}
<div class="runs-box"><table class="summary" id="runs">
<thead><tr><th>run</th><th>verdict</th><th>target</th><th>seed</th><th>length</th><th>failovers</th><th>takeovers</th><th>violations</th><th>expectations</th><th>replay</th></tr></thead>
<tbody>
{{range .Runs}}<tr class="run" data-ok="{{.OK}}" data-seed="{{.Seed}}">
<td><a href="#{{.Anchor}}">{{.Name}}</a></td>
<td>{{if .OK}}<span class="verdict pass">PASS</span>{{else}}<span class="verdict fail">FAIL</span>{{end}}</td>
<td>{{.Target}}</td><td class="num">{{.Seed}}</td><td class="num">{{.Duration}}</td>
<td class="num">{{.Failovers}}</td><td class="num">{{.Takeovers}}</td><td class="num">{{.Violations}}</td>
<td>{{.Expectations}}</td><td><code class="replay">{{.Replay}}</code></td></tr>
{{end}}</tbody>
</table></div>

{{if .Heatmaps}}<h2 id="heatmaps">Sweep</h2>
<div class="heatmaps">{{range .Heatmaps}}<figure><img class="plot {{.Class}}" src="{{.Image}}" width="{{.Width}}" height="{{.Height}}" alt="{{.Title}}"></figure>{{end}}</div>
{{end}}
{{if .Plots}}<h2 id="distributions">Distributions</h2>
<p>Histogram and cumulative distribution of every measure; the green band is the window it is judged against.</p>
{{range .Plots}}<img class="plot {{.Class}}" src="{{.Image}}" width="{{.Width}}" height="{{.Height}}" alt="{{.Title}}">
{{end}}{{end}}
<h2 id="timelines">Timelines</h2>
<p>One lane per node, then one per shard as the gateway saw it. Hover a span or a mark for its exact milliseconds; the line under each timeline reads the time under the cursor.{{if .Omitted}} {{.Omitted}} run(s) have no timeline here (failed runs come first); replay one with its command to see it.{{end}}</p>
{{range .Timelines}}<section class="run-timeline" id="{{.Anchor}}" data-lanes="{{.Lanes}}" data-failovers="{{.FailoverCount}}">
<h3>{{.Name}} {{if .OK}}<span class="verdict pass">PASS</span>{{else}}<span class="verdict fail">FAIL</span>{{end}}</h3>
<div><code class="replay">{{.Replay}}</code></div>
<div class="timeline" data-seconds="{{secs .Seconds}}" data-x0="{{pct .X0}}" data-x1="{{pct .X1}}">
<img src="{{.Image}}" width="{{.Width}}" height="{{.Height}}" alt="timeline of {{.Name}}">
{{range .Overlays}}<div class="ov {{.Class}}"{{.Data}} title="{{.Title}}" style="{{.Style}}"></div>
{{end}}</div>
<div class="readout"></div>
<div class="legend">{{range .Legend}}<span class="key">{{if eq .Class "swatch"}}<i class="swatch" style="{{.Style}}"></i>{{.Label}}{{else}}<span class="{{.Class}}">{{.Label}}</span>{{end}}</span>{{end}}</div>
<ul class="verdicts">{{range .Expectations}}<li>{{.}}</li>{{end}}{{range .Violations}}<li class="bad">violation: {{.}}</li>{{end}}</ul>
</section>
{{end}}
</main>
<div id="tip"></div>
<script>
(function () {
  var tip = document.getElementById("tip");
  document.querySelectorAll(".ov[title]").forEach(function (el) {
    el.dataset.tip = el.getAttribute("title");
    el.removeAttribute("title");
    el.setAttribute("aria-label", el.dataset.tip);
  });
  document.addEventListener("mousemove", function (e) {
    var el = e.target.closest ? e.target.closest(".ov") : null;
    if (!el) { tip.style.display = "none"; return; }
    tip.textContent = el.dataset.tip;
    tip.style.display = "block";
    tip.style.left = Math.min(e.clientX + 12, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = (e.clientY + 14) + "px";
  });
  document.querySelectorAll(".timeline").forEach(function (tl) {
    var out = tl.parentNode.querySelector(".readout");
    var secs = parseFloat(tl.dataset.seconds), x0 = parseFloat(tl.dataset.x0), x1 = parseFloat(tl.dataset.x1);
    tl.addEventListener("mousemove", function (e) {
      var r = tl.getBoundingClientRect();
      var pct = (e.clientX - r.left) / r.width * 100;
      if (pct < x0 || pct > x1) { out.textContent = ""; return; }
      out.textContent = "cursor: t = " + ((pct - x0) / (x1 - x0) * secs * 1000).toFixed(1) + " ms";
    });
    tl.addEventListener("mouseleave", function () { out.textContent = ""; });
  });
})();
</script>
</body>
</html>
`
