/*! hailwhale.panels.js: the graph's flot plots, one per metric, sharing the time axis. */
/*
 * Each metric or formula gets a panel (small multiples): the parent as a light
 * filled area behind, its children as lines on top (or stacked areas, with the
 * parent's line over them), the previous window of the same length dashed, gaps
 * where a ratio has no value. Every panel has the same x range and the same room
 * for y labels, so their time axes line up and no label is clipped; the y axis is
 * fitted to what the panel shows (linear from 0, or log). Colours come from CSS
 * custom properties (css/hailwhale.css), so dark mode reaches the canvas too.
 * Needs jQuery, flot 4 (its es5 bundle: time, stack, log axis, selection) and
 * hailwhale.format.js.
 */
(function ($) {
    'use strict';

    if (!$ || !$.plot || !$.hailwhale || !$.hailwhale.text) {
        throw new Error('hailwhale.panels.js needs jQuery, flot and hailwhale.format.js on the page first');
    }

    var text = $.hailwhale.text;
    var LABEL_WIDTH = 46;  // px for y labels: `-1.25M` at 11px fits, the same in every panel
    var LINE_WIDTHS = [2, 1.75, 1.1, 1];  // by level: parent, children, grandchildren
    var THEME = {  // CSS custom property -> fallback
        '--hailwhale-axis': '#52606d', '--hailwhale-grid': '#edf0f3',
        '--hailwhale-border': '#c3cad3', '--hailwhale-parent': '#1d3557',
        '--hailwhale-selection': '#4e79a7'
    };

    /** The theme's colours as the element's CSS says them (light or dark). */
    function theme(element) {
        var style = window.getComputedStyle(element);
        var colors = {};
        $.each(THEME, function (name, fallback) {
            colors[name.replace('--hailwhale-', '')] = $.trim(style.getPropertyValue(name)) || fallback;
        });
        return colors;
    }

    function values(series) {
        var out = [];
        $.each(series, function (i, one) {
            $.each(one.data, function (j, point) {
                if (point[1] != null) {
                    out.push(point[1]);
                }
            });
        });
        return out;
    }

    /** The flot series of one panel: `entries` (the server's order) with `metric`'s
     * points; `previous` the parent's previous window, already shifted onto this one. */
    function seriesOf(entries, metric, stacked, previous, colors) {
        var drawn = $.map(entries, function (entry) {
            var data = (entry.points[metric] || []);
            var gaps = data.some(function (point) { return point[1] == null; });
            var level = Math.min(entry.level, 3);
            var stack = stacked && entry.level === 1;
            var parent = entry.level === 0;
            return {
                key: entry.key, path: entry.path, level: entry.level, label: entry.label,
                color: entry.color, data: data, shadowSize: 0, stack: stack ? 'children' : null,
                lines: {show: true, lineWidth: stack ? 1 : LINE_WIDTHS[level],
                        fill: stack ? 0.55 : (parent && !stacked ? 0.13 : false)},
                // Lone values between gaps would not show as lines: dots mark every value.
                points: {show: gaps, radius: 1.5, lineWidth: 1, fill: true, fillColor: entry.color}
            };
        });
        if (previous) {
            drawn.push({
                key: previous.key, label: previous.label, color: colors.parent,
                data: previous.points[metric] || [], shadowSize: 0, level: 0, previous: true,
                lines: {show: true, lineWidth: 1.5, fill: false, dashes: [6, 4]}
            });
        }
        // Stacked: the children's bands first, the parent's line over them. Otherwise the
        // parent's area first, behind, and the children's lines on top of it.
        var parents = drawn.filter(function (s) { return s.level === 0; });
        var children = drawn.filter(function (s) { return s.level > 0; });
        return stacked ? children.concat(parents) : parents.concat(children);
    }

    /** The y axis for `series`: from 0 (lower only for negative data) to a round end;
     * log: decades around the positive values. Counts get whole-number ticks. */
    function yAxis(series, stacked, log) {
        var all = values(series);
        if (stacked) {
            var sums = [];
            $.each(series, function (i, one) {
                if (one.stack) {
                    $.each(one.data, function (j, point) {
                        sums[j] = (sums[j] || 0) + (point[1] || 0);
                    });
                }
            });
            all = all.concat(sums);
        }
        var low = Math.min.apply(null, [0].concat(all));
        var high = Math.max.apply(null, [0].concat(all));
        var whole = all.every(function (v) { return v % 1 === 0; });
        var positive = all.filter(function (v) { return v > 0; });
        if (log && low >= 0 && positive.length) {
            var bottom = Math.floor(Math.log(Math.min.apply(null, positive)) / Math.LN10);
            var top = Math.ceil(Math.log(high * 1.05) / Math.LN10);
            return {mode: 'log', min: Math.pow(10, bottom), max: Math.pow(10, Math.max(top, bottom + 1)),
                    minTickSize: null, tickDecimals: null, empty: false};
        }
        var least = whole ? 1 : 0;
        var empty = high === 0 && low === 0;
        return {mode: null, min: low < 0 ? -text.roundUp(-low, least) : 0,
                max: empty ? 1 : text.roundUp(high, least),
                minTickSize: least || null, tickDecimals: whole ? 0 : null, empty: empty};
    }

    /** One panel: a head (the metric, and why it is not stacked), the plot, a crosshair. */
    function Panel($frame, metric, height) {
        this.metric = metric;
        this.$element = $('<div class="hailwhale-panel"></div>').appendTo($frame);
        this.$head = $('<div class="hailwhale-panel-head"></div>').appendTo(this.$element);
        $('<span class="hailwhale-metric"></span>').text(metric).appendTo(this.$head);
        this.$reason = $('<span class="hailwhale-reason"></span>').appendTo(this.$head);
        this.$plot = $('<div class="hailwhale-plot"></div>').appendTo(this.$element);
        if (height) {
            this.$plot.css('height', height + 'px');
        }
        this.$cross = $('<div class="hailwhale-cross"></div>').hide().appendTo(this.$element);
        this.plot = null;
        this.mode = null;
    }

    /** Draw `series` over [xmin, xmax]; a new flot plot only when the axis mode changes. */
    Panel.prototype.draw = function (series, x, y, options) {
        var mode = y.mode;
        var yaxis = {min: y.min, max: y.max, minTickSize: y.minTickSize, tickDecimals: y.tickDecimals};
        if (this.plot && this.mode === mode) {
            var axes = this.plot.getAxes();
            $.extend(axes.xaxis.options, x);
            $.extend(axes.yaxis.options, yaxis);
            this.plot.setData(series);
            this.plot.setupGrid();
            this.plot.draw();
            return;
        }
        if (this.plot) {
            this.plot.shutdown();
            this.$plot.empty();
        }
        this.mode = mode;
        var colors = options.colors;
        this.plot = $.plot(this.$plot, series, $.extend(true, {
            // Explicit ends and label room: flot measures tick labels before it
            // autoscales, so a widened axis could push a label off the canvas.
            xaxis: $.extend({mode: 'time', timeBase: 'milliseconds', timezone: 'browser',
                             autoScale: 'none', showMinorTicks: false,
                             showTickLabels: options.xLabels ? 'major' : 'none'}, x),
            yaxis: $.extend({mode: mode, tickFormatter: text.compact, autoScale: 'none',
                             showMinorTicks: false, labelWidth: LABEL_WIDTH}, yaxis),
            series: {shadowSize: 0},
            selection: {mode: options.zoom ? 'x' : null, color: colors.selection, minSize: 8},
            grid: {hoverable: true, autoHighlight: false,
                   borderWidth: {top: 0, right: 0, bottom: 1, left: 1},
                   borderColor: colors.border, tickColor: colors.grid, color: colors.axis,
                   labelMargin: 6, margin: {top: 8, right: 12, bottom: 0, left: 2}},
            legend: {show: false}
        }, options.flot || {}));
    };

    /** Show the crosshair at `ms`, or hide it (null). */
    Panel.prototype.cross = function (ms) {
        if (!this.plot || ms == null) {
            this.$cross.hide();
            return;
        }
        var offset = this.plot.getPlotOffset();
        var plotTop = this.$plot.position().top;
        this.$cross.css({left: this.$plot.position().left + offset.left + this.plot.getAxes().xaxis.p2c(ms),
                         top: plotTop + offset.top, height: this.plot.height()}).show();
    };

    Panel.prototype.resize = function () {
        if (this.plot) {
            this.plot.resize();
            this.plot.setupGrid();
            this.plot.draw();
        }
    };

    Panel.prototype.destroy = function () {
        if (this.plot) {
            this.plot.destroy();
            this.plot = null;
        }
        this.$element.remove();
    };

    /**
     * The panels of one graph. draw() takes the entries ({key, path, level, label, color,
     * points: {metric: [[ms, value], ...]}}), the metrics, and per metric whether it may
     * stack; previous: the parent's previous window, shifted.
     */
    function Panels($frame) {
        this.$frame = $frame;
        this.list = [];
        this.signature = null;
    }

    Panels.prototype.draw = function (entries, metrics, settings) {
        var signature = JSON.stringify([metrics, settings.height, settings.zoom, settings.dark]);
        if (signature !== this.signature) {
            this.clear();
            this.signature = signature;
            // null: the element's own height, which the panels share (css/hailwhale.css).
            var height = settings.height && metrics.length > 1
                ? Math.max(120, Math.round(settings.height * 0.6)) : settings.height;
            var $frame = this.$frame;
            this.list = $.map(metrics, function (metric) { return new Panel($frame, metric, height); });
        }
        var first = entries.length ? entries[0].points[metrics[0]] || [] : [];
        var x = {min: first.length ? first[0][0] : Date.now() - 3600000,
                 max: first.length ? first[first.length - 1][0] : Date.now()};
        var several = metrics.length > 1;
        var empty = true;
        $.each(this.list, function (i, panel) {
            var stacked = settings.area && !settings.unstackable[i];
            var series = seriesOf(entries, panel.metric, stacked, settings.previous, settings.colors);
            var y = yAxis(series, stacked, settings.log);
            empty = empty && y.empty;
            panel.$head.toggle(several || !!(settings.area && settings.unstackable[i]));
            panel.$reason.text(settings.area ? settings.unstackable[i] || '' : '');
            panel.draw(series, x, y, {zoom: settings.zoom, xLabels: i === metrics.length - 1,
                                      colors: settings.colors, flot: settings.flot});
        });
        return {empty: empty, x: x};
    };

    /** Bring out the series `key` (a legend entry under the pointer): the others fade;
     * null brings every one back. */
    Panels.prototype.focus = function (key) {
        $.each(this.plots(), function (i, plot) {
            $.each(plot.getData(), function (j, series) {
                series.fullColor = series.fullColor || series.color;
                series.color = key == null || series.key === key ? series.fullColor
                    : $.color.parse(series.fullColor).scale('a', 0.18).toString();
            });
            plot.draw();
        });
    };

    Panels.prototype.plots = function () {
        return $.map(this.list, function (panel) { return panel.plot; });
    };

    Panels.prototype.cross = function (ms) {
        $.each(this.list, function (i, panel) { panel.cross(ms); });
    };

    Panels.prototype.resize = function () {
        $.each(this.list, function (i, panel) { panel.resize(); });
    };

    Panels.prototype.clear = function () {
        $.each(this.list, function (i, panel) { panel.destroy(); });
        this.list = [];
        this.signature = null;
    };

    $.hailwhale.Panels = Panels;
    $.hailwhale.theme = theme;
}(window.jQuery));
