/*! hailwhale.widget.js: one live HailWhale graph drawn with flot: legend, hover, autoupdate, destroy. */
/*
 * The plugin glue (jquery.hailwhale.js) makes one Widget per element; the look is
 * css/hailwhale.css. Needs jQuery, flot 4 (with its time and stack plugins: the
 * es5 bundle has them) and hailwhale.client.js. The widget draws its own HTML
 * legend (flot 4's SVG legend ignores clicks, pastes labels in as markup and has
 * a black background unless styled), keeps the server's order of series (it
 * ranks them) and polls with one setTimeout chain, so no timer outlives destroy.
 */
(function ($) {
    'use strict';

    if (!$ || !$.hailwhale || !$.hailwhale.Client) {
        throw new Error('hailwhale.widget.js needs jQuery and hailwhale.client.js on the page first');
    }

    var hw = $.hailwhale;
    var DATA_KEY = 'hailwhale';
    var DEFAULTS = {
        url: '',            // the HailWhale server; '' is this page's origin
        key: null,          // the server's read key, if it has one
        pk: null,           // category: a name or a JSON list path
        dimension: null,    // the parent path: a name, an array or a JSON list
        metric: 'hits',     // a metric name or a formula such as dollars/hits
        period: null,       // a configured period such as 15s:3h; null is the server's first
        depth: 0,           // 1 adds the children, 2 the grandchildren
        threshold: null,    // null is the server's default (0.1)
        limit: null,        // null is the server's default (10 per parent)
        sort: null,
        autoupdate: false,
        interval: 10000,    // ms between polls when autoupdate
        title: null,
        area: false,        // stack the children as filled areas under the overall line
        colors: null,       // [overall, child, child, ...]
        legend: true,
        height: null,       // px; null uses the element's own height, or 260
        drilldown: false,   // legend children are buttons that trigger 'hailwhaleselect'
        flot: null          // extra flot options, merged last
    };
    var COLORS = ['#1d3557', '#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#b07aa1',
                  '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#8cd17d', '#bab0ac'];
    var LINE_WIDTHS = [3, 1.5, 1, 1];
    var nextId = 0;

    // -- numbers and times -----------------------------------------------------

    function trimZeros(text) {
        return text.indexOf('.') < 0 ? text : text.replace(/\.?0+$/, '');
    }

    function compact(value) {
        var size = Math.abs(value);
        var units = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
        for (var i = 0; i < units.length; i++) {
            if (size >= units[i][0]) {
                return trimZeros((value / units[i][0]).toFixed(2)) + units[i][1];
            }
        }
        if (size === 0) {
            return '0';
        }
        return size >= 1 ? trimZeros(value.toFixed(2)) : trimZeros(value.toPrecision(3));
    }

    /** A round axis end a little beyond `value`, on a step of at least `least`. */
    function roundUp(value, least) {
        if (value <= 0) {
            return 0;
        }
        value *= 1.05;  // headroom: the highest point does not touch the frame
        var rough = value / 5;
        var magnitude = Math.pow(10, Math.floor(Math.log(rough) / Math.LN10));
        var steps = [1, 2, 2.5, 5, 10];
        for (var i = 0; i < steps.length - 1 && rough > steps[i] * magnitude; i++) {
            // the first round step that fits five ticks
        }
        var step = Math.max(steps[i] * magnitude, least || 0);
        return Math.ceil(value / step - 1e-9) * step;
    }

    function exact(value) {
        return Number(value).toLocaleString(undefined, {maximumFractionDigits: 6});
    }

    function span(ms) {
        var units = [[86400000, 'd'], [3600000, 'h'], [60000, 'min'], [1000, 's']];
        for (var i = 0; i < units.length; i++) {
            if (ms >= units[i][0] && ms % units[i][0] === 0) {
                return ms / units[i][0] + ' ' + units[i][1];
            }
        }
        return ms + ' ms';
    }

    function bucketTime(ms, step) {
        var parts = {month: 'short', day: 'numeric', hourCycle: 'h23'};
        if (step < 86400000) {
            parts.hour = '2-digit';
            parts.minute = '2-digit';
        } else {
            parts.year = 'numeric';
        }
        if (step < 60000) {
            parts.second = '2-digit';
        }
        return new Date(ms).toLocaleString(undefined, parts);
    }

    // -- the widget ------------------------------------------------------------

    function Widget(element, options) {
        this.element = element;
        this.$element = $(element);
        this.options = $.extend({}, DEFAULTS, options);
        this.ns = 'hailwhale' + (++nextId);
        this.client = hw(this.options.url, this.options.key);
        this.plot = null;
        this.timer = null;
        this.xhr = null;
        this.generation = 0;
        this.draws = 0;
        this.colorOf = {};
        this.entries = [];
        this.legendSignature = null;
        this.destroyed = false;
        this.originalStyle = element.getAttribute('style');
        this.build();
        this.refresh();
    }

    Widget.prototype.build = function () {
        var self = this;
        var ownHeight = this.$element.height();
        this.$element.addClass('hailwhale').empty().attr('data-hailwhale-state', 'loading');
        this.$title = $('<div class="hailwhale-title"></div>').appendTo(this.$element);
        // flot removes whatever else its placeholder holds: notes sit beside it, in a frame.
        this.$frame = $('<div class="hailwhale-frame"></div>').appendTo(this.$element);
        this.$plot = $('<div class="hailwhale-plot"></div>').appendTo(this.$frame);
        this.$note = $('<div class="hailwhale-note">Loading…</div>').appendTo(this.$frame);
        this.$error = $('<div class="hailwhale-error" role="alert"></div>').hide()
            .appendTo(this.$frame);
        this.$legend = $('<div class="hailwhale-legend"></div>').appendTo(this.$element);
        this.$tip = $('<div class="hailwhale-tip"></div>').hide().appendTo(this.$element);
        this.fixedHeight = !this.options.height && ownHeight >= 120 ? ownHeight : null;
        if (this.fixedHeight) {
            // The element has a height of its own: the plot takes what title and legend leave.
            this.$element.addClass('hailwhale-fixed').css('height', ownHeight);
        }
        this.applyOptions();

        this.$plot.on('plothover.' + DATA_KEY, function (event, pos) {
            self.hover(pos);
        }).on('mouseleave.' + DATA_KEY, function () {
            self.unhover();
        });
        this.$legend.on('click.' + DATA_KEY, 'button.hailwhale-key', function () {
            var entry = self.entries[+$(this).attr('data-index')];
            if (!entry) {
                return;
            }
            var event = $.Event('hailwhaleselect');
            self.$element.trigger(event, [{key: entry.key, path: entry.path.slice(),
                                            label: entry.label, level: entry.level}]);
            if (!event.isDefaultPrevented() && entry.level > 0) {
                self.update({dimension: entry.path});
            }
        });
        var resizing = null;
        $(window).on('resize.' + this.ns, function () {
            clearTimeout(resizing);
            resizing = setTimeout(function () { self.resize(); }, 150);
        });
    };

    Widget.prototype.applyOptions = function () {
        var options = this.options;
        this.$title.text(options.title || '').toggle(!!options.title);
        this.$legend.toggle(options.legend !== false);
        if (!this.fixedHeight) {
            this.$plot.css('height', (+options.height || 260) + 'px');
        }
    };

    /** Change options (e.g. {dimension: [...]}) and redraw in place. */
    Widget.prototype.update = function (options) {
        var before = this.options;
        this.options = $.extend({}, before, options);
        if (this.options.url !== before.url || this.options.key !== before.key) {
            this.client = hw(this.options.url, this.options.key);
        }
        var same = ['pk', 'dimension', 'metric', 'url'].every(function (name) {
            return JSON.stringify(before[name]) === JSON.stringify(this.options[name]);
        }, this);
        if (!same) {
            this.colorOf = {};
        }
        this.applyOptions();
        this.refresh();
    };

    /** Fetch now; with autoupdate, the next poll follows `interval` ms after this one ends. */
    Widget.prototype.refresh = function () {
        if (this.destroyed) {
            return;
        }
        if (!document.documentElement.contains(this.element)) {
            this.destroy();  // removed from the page without destroy: stop polling anyway
            return;
        }
        clearTimeout(this.timer);
        this.timer = null;
        if (this.xhr) {
            this.xhr.abort();
        }
        var self = this;
        var generation = ++this.generation;
        var xhr = this.xhr = this.client.series(this.options);
        xhr.done(function (series) {
            if (generation === self.generation) {
                try {
                    self.render(series);
                } catch (error) {
                    self.showError('Could not draw the graph: ' + error.message);
                    if (window.console) {
                        window.console.error(error);
                    }
                }
            }
        }).fail(function (failed, status) {
            if (generation === self.generation && status !== 'abort') {
                self.showError(self.client.failure(failed));
            }
        }).always(function () {
            if (generation === self.generation) {
                self.xhr = null;
                self.schedule();
            }
        });
    };

    Widget.prototype.schedule = function () {
        if (this.destroyed || !this.options.autoupdate) {
            return;
        }
        var self = this;
        clearTimeout(this.timer);
        this.timer = setTimeout(function () {
            self.timer = null;
            self.refresh();
        }, Math.max(200, +this.options.interval || DEFAULTS.interval));
    };

    Widget.prototype.colorFor = function (entry) {
        var palette = this.options.colors || COLORS;
        if (entry.level === 0) {
            return palette[0];
        }
        if (!this.colorOf[entry.key]) {
            var used = 0;
            $.each(this.colorOf, function () { used++; });
            this.colorOf[entry.key] = palette[1 + used % Math.max(1, palette.length - 1)];
        }
        return this.colorOf[entry.key];
    };

    /** One entry per series, in the server's order: the parent first, then each child
     * (ranked) followed by its own. */
    Widget.prototype.entriesOf = function (series) {
        var wanted = $.isArray(this.options.metric) ? this.options.metric[0] : this.options.metric;
        var parent = series.length ? series[0][2] : [];
        return $.map(series, function (entry) {
            var byMetric = entry[1] || {};
            var points = byMetric[wanted] || byMetric[Object.keys(byMetric)[0]] || [];
            var path = entry[2];
            var level = path.length - parent.length;
            var label = level === 0 ? (path.length ? path.join(' › ') : 'overall')
                                    : path.slice(parent.length).join(' › ');
            return {key: entry[0], path: path, level: level, points: points, label: label};
        });
    };

    Widget.prototype.render = function (series) {
        var self = this;
        var options = this.options;
        var entries = this.entriesOf(series);
        var low = 0;
        var high = 0;
        var whole = true;
        $.each(entries, function (i, entry) {
            entry.color = self.colorFor(entry);
            $.each(entry.points, function (j, point) {
                low = Math.min(low, point[1]);
                high = Math.max(high, point[1]);
                whole = whole && point[1] % 1 === 0;
            });
        });
        if (options.area) {
            // Stacked children can top the parent (averages do): the axis must hold the stack.
            var stacked = [];
            $.each(entries, function (i, entry) {
                if (entry.level === 1) {
                    $.each(entry.points, function (j, point) {
                        stacked[j] = (stacked[j] || 0) + point[1];
                        high = Math.max(high, stacked[j]);
                    });
                }
            });
        }
        // Children first and the parent last, so its thick line is drawn on top.
        var ordered = entries.filter(function (e) { return e.level > 0; })
            .concat(entries.filter(function (e) { return e.level === 0; }));
        var drawn = $.map(ordered, function (entry) {
            var stacked = options.area && entry.level === 1;
            return {
                key: entry.key, path: entry.path, level: entry.level, label: entry.label,
                color: entry.color, data: entry.points, shadowSize: 0,
                stack: stacked ? 'children' : null,
                lines: {show: true, lineWidth: stacked ? 1 : LINE_WIDTHS[Math.min(entry.level, 3)],
                        fill: stacked ? 0.55 : false}
            };
        });
        var first = entries.length && entries[0].points.length ? entries[0].points : null;
        var xaxis = {
            min: first ? first[0][0] : Date.now() - 3600000,
            max: first ? first[first.length - 1][0] : Date.now()
        };
        // y from 0 (below only for negative data); an empty window is a flat line on [0, 1].
        // Counts get whole-number ticks: no 0.2 of a hit.
        var least = whole ? 1 : 0;
        var yaxis = {min: low < 0 ? -roundUp(-low, least) : 0,
                     max: (high === 0 && low === 0) ? 1 : roundUp(high, least),
                     minTickSize: least || null, tickDecimals: whole ? 0 : null};
        this.step = first && first.length > 1 ? first[1][0] - first[0][0] : 0;
        this.entries = entries;
        this.hideError();
        var empty = high === 0 && low === 0;
        this.$note.text(empty ? 'Nothing counted in this window yet' : '').toggle(empty);
        if (!this.plot) {
            var flotOptions = $.extend(true, {
                // Both axes get explicit ends: flot measures tick labels before it
                // autoscales, so a widened axis could push its top label off the canvas.
                xaxis: {mode: 'time', timeBase: 'milliseconds', timezone: 'browser',
                        autoScale: 'none', showMinorTicks: false},
                yaxis: {tickFormatter: compact, autoScale: 'none', showMinorTicks: false},
                series: {shadowSize: 0},
                grid: {hoverable: true, autoHighlight: false, borderWidth: {top: 0, right: 0, bottom: 1, left: 1},
                       borderColor: '#c3cad3', tickColor: '#edf0f3', color: '#52606d',
                       labelMargin: 8, margin: {top: 8, right: 12, bottom: 0, left: 0}},
                legend: {show: false}
            }, {xaxis: xaxis, yaxis: yaxis}, options.flot || {});
            this.plot = $.plot(this.$plot, drawn, flotOptions);
        } else {
            var axes = this.plot.getAxes();
            $.extend(axes.xaxis.options, xaxis);
            $.extend(axes.yaxis.options, yaxis);
            this.plot.setData(drawn);
            this.plot.setupGrid();
            this.plot.draw();
        }
        this.renderLegend(entries);
        this.draws++;
        this.$element.attr({'data-hailwhale-state': 'ready', 'data-hailwhale-draws': this.draws});
        this.$element.trigger('hailwhaledraw', [{entries: entries, draws: this.draws}]);
    };

    Widget.prototype.renderLegend = function (entries) {
        var drill = !!this.options.drilldown;
        var area = !!this.options.area;
        var signature = JSON.stringify($.map(entries, function (e) {
            return [[e.key, e.color, e.label]];
        })) + drill + area;
        if (signature === this.legendSignature) {
            return;  // unchanged: leave the DOM alone, no flicker
        }
        this.legendSignature = signature;
        var $legend = this.$legend.empty();
        $.each(entries, function (i, entry) {
            var button = drill && entry.level > 0;
            var $key = $(button ? '<button type="button"></button>' : '<span></span>')
                .addClass('hailwhale-key hailwhale-level' + Math.min(entry.level, 3))
                .toggleClass('hailwhale-stacked', area && entry.level === 1)
                .attr({'data-index': i, 'data-key': entry.key, title: entry.label});
            if (button) {
                $key.attr('title', 'Drill down into ' + entry.label);
            }
            $('<i></i>').css('background', entry.color).appendTo($key);
            $('<span></span>').text(entry.label).appendTo($key);
            $legend.append($key);
        });
    };

    Widget.prototype.hover = function (pos) {
        if (!this.plot || !this.entries.length || !this.step || pos.x == null) {
            return;
        }
        var first = this.entries[0].points;
        var index = Math.round((pos.x - first[0][0]) / this.step);
        if (index < 0 || index >= first.length) {
            this.unhover();
            return;
        }
        var plot = this.plot;
        plot.unhighlight();
        $.each(plot.getData(), function (i, series) {
            if (series.data[index]) {
                plot.highlight(series, index);
            }
        });
        var $table = $('<table></table>');
        $.each(this.entries.slice(0, 12), function (i, entry) {
            var point = entry.points[index];
            var $row = $('<tr></tr>').appendTo($table);
            $('<td></td>').append($('<i></i>').css('background', entry.color))
                .append(document.createTextNode(entry.label)).appendTo($row);
            $('<td></td>').text(point ? exact(point[1]) : '–').appendTo($row);
        });
        var time = bucketTime(first[index][0], this.step) + ' · ' + span(this.step) + ' bucket';
        this.$tip.empty().append($('<div class="hailwhale-tip-time"></div>').text(time))
            .append($table).show();
        var box = this.$element.offset();
        var left = pos.pageX - box.left + 14;
        var top = pos.pageY - box.top + 14;
        var width = this.$tip.outerWidth();
        if (left + width > this.$element.innerWidth()) {
            left = Math.max(0, pos.pageX - box.left - width - 14);
        }
        this.$tip.css({left: left, top: top});
    };

    Widget.prototype.unhover = function () {
        this.$tip.hide();
        if (this.plot) {
            this.plot.unhighlight();
        }
    };

    Widget.prototype.resize = function () {
        if (this.plot && !this.destroyed) {
            this.plot.resize();
            this.plot.setupGrid();
            this.plot.draw();
        }
    };

    Widget.prototype.showError = function (message) {
        this.$error.text(message).show();
        this.$note.hide();
        this.$element.attr('data-hailwhale-state', 'error');
        this.$element.trigger('hailwhaleerror', [message]);
    };

    Widget.prototype.hideError = function () {
        this.$error.hide().text('');
    };

    /** Stop polling, abort the request in flight, and give the element back as it was. */
    Widget.prototype.destroy = function () {
        if (this.destroyed) {
            return;
        }
        this.destroyed = true;
        this.generation++;
        clearTimeout(this.timer);
        this.timer = null;
        if (this.xhr) {
            this.xhr.abort();
            this.xhr = null;
        }
        $(window).off('.' + this.ns);
        if (this.plot) {
            this.plot.destroy();
            this.plot = null;
        }
        this.$element.off('.' + DATA_KEY).empty().removeClass('hailwhale hailwhale-fixed')
            .removeAttr('data-hailwhale-state data-hailwhale-draws').removeData(DATA_KEY);
        if (this.originalStyle == null) {
            this.element.removeAttribute('style');
        } else {
            this.element.setAttribute('style', this.originalStyle);
        }
    };


    Widget.defaults = DEFAULTS;
    hw.Widget = Widget;
    hw.format = compact;
}(window.jQuery));
