/*! hailwhale.widget.js: one live HailWhale graph: fetches what its options ask for and draws it. */
/*
 * The plugin glue (jquery.hailwhale.js) makes one Widget per element. A refresh
 * asks, in order: /meta (once per pk: are the metrics known, which are unique),
 * /plotpoints (the graph, in the server's order), then for exactly the window
 * it answered /totals (the legend's totals), /dimensions (the children the
 * threshold left out) and, to compare, the previous window. The pieces draw:
 * hailwhale.panels.js (plots), hailwhale.legend.js (legend, hidden children,
 * tooltip), hailwhale.range.js (range picker, zoom). Polling is one setTimeout
 * chain, so no timer outlives destroy. The look is css/hailwhale.css.
 */
(function ($) {
    'use strict';

    var hw = $ && $.hailwhale;
    if (!hw || !hw.Client || !hw.text || !hw.meta || !hw.Range || !hw.Legend || !hw.Panels) {
        throw new Error('hailwhale.widget.js needs jQuery, flot, hailwhale.client.js, ' +
                        'hailwhale.format.js, hailwhale.meta.js, hailwhale.range.js, ' +
                        'hailwhale.legend.js and hailwhale.panels.js on the page first');
    }

    var DATA_KEY = 'hailwhale';
    var DEFAULTS = {
        url: '',            // the HailWhale server; '' is this page's origin
        key: null,          // the server's read key, if it has one
        pk: null,           // category: a name or a JSON list path
        dimension: null,    // the parent path: a name, an array or a JSON list
        metric: 'hits',     // a name or formula (dollars/hits), or several: an array,
        metrics: null,      //   a JSON list or names separated by commas (small multiples)
        period: null,       // a configured period such as 15s:3h: its latest window
        range: null,        // the last stretch of time, such as 6h: from=-6h
        from: null,         // a time range: epoch seconds, ISO 8601 or -6h, as the server
        to: null,           //   takes them; without period, the finest that covers it
        depth: 0,           // 1 adds the children, 2 the grandchildren
        threshold: null,    // null is the server's default (0.1)
        limit: null,        // null is the server's default (10 per parent)
        sort: null,
        autoupdate: false,
        interval: 10000,    // ms between polls when autoupdate (a range with a fixed end: none)
        title: null,
        area: false,        // stack the children as filled areas under the parent's line
        log: false,         // a log y axis
        compare: false,     // the previous window of the same length, dashed
        zoom: true,         // drag across the plot to zoom; a button zooms back out
        toolbar: true,      // the range picker, bucket size, log and compare toggles
        colors: null,       // [parent, child, child, ...]
        legend: true,
        height: null,       // px; null uses the element's own height, or 260
        drilldown: false,   // legend children are buttons that trigger 'hailwhaleselect'
        flot: null          // extra flot options, merged last
    };
    // Children's colours: none close to the parent's (dark blue, or light in dark mode).
    var COLORS = ['#f28e2b', '#59a14f', '#e15759', '#4e79a7', '#b07aa1', '#76b7b2', '#edc948',
                  '#ff9da7', '#9c755f', '#8cd17d', '#bab0ac'];
    var DARK = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;
    var nextId = 0;

    function Widget(element, options) {
        this.element = element;
        this.$element = $(element);
        this.options = $.extend({}, DEFAULTS, options);
        this.ns = 'hailwhale' + (++nextId);
        this.client = hw(this.options.url, this.options.key);
        this.plot = null;
        this.timer = null;
        this.requests = [];
        this.generation = 0;
        this.draws = 0;
        this.colorOf = {};
        this.drawn = null;  // what the last draw showed, for hover and a redraw
        this.window = null;
        this.step = 0;
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
        this.range = new hw.Range(this, $('<div class="hailwhale-toolbar"></div>').appendTo(this.$element));
        // flot removes whatever else its placeholder holds: notes sit beside the plots.
        this.$frame = $('<div class="hailwhale-frame"></div>').appendTo(this.$element);
        this.$note = $('<div class="hailwhale-note">Loading…</div>').appendTo(this.$frame);
        this.$error = $('<div class="hailwhale-error" role="alert"></div>').hide().appendTo(this.$frame);
        this.panels = new hw.Panels(this.$frame);
        this.$legend = $('<div class="hailwhale-legend"></div>').appendTo(this.$element);
        this.legend = new hw.Legend(this.$legend);
        this.$hidden = $('<div class="hailwhale-hidden"></div>').hide().appendTo(this.$element);
        this.$notes = $('<div class="hailwhale-notes"></div>').hide().appendTo(this.$element);
        this.tip = new hw.Tip($('<div class="hailwhale-tip"></div>').hide().appendTo(this.$element),
                              this.$element);
        this.fixedHeight = !this.options.height && ownHeight >= 120 ? ownHeight : null;
        if (this.fixedHeight) {
            // The element has a height of its own: the plots take what the rest leaves.
            this.$element.addClass('hailwhale-fixed').css('height', ownHeight);
        }
        this.applyOptions();

        this.$frame.on('plothover.' + DATA_KEY, function (event, pos) {
            self.hover(pos);
        }).on('mouseleave.' + DATA_KEY, function () {
            self.unhover();
        }).on('plotselected.' + DATA_KEY, function (event, ranges) {
            $.each(self.panels.plots(), function (i, plot) { plot.clearSelection(true); });
            if (ranges && ranges.xaxis && self.options.zoom !== false) {
                self.range.zoom(ranges.xaxis.from, ranges.xaxis.to);
            }
        });
        this.$legend.on('mouseenter.' + DATA_KEY, '.hailwhale-key', function () {
            self.panels.focus($(this).attr('data-key'));
        }).on('mouseleave.' + DATA_KEY, '.hailwhale-key', function () {
            self.panels.focus(null);
        });
        this.$legend.on('click.' + DATA_KEY, 'button.hailwhale-key', function () {
            var entry = self.drawn && self.drawn.keys[+$(this).attr('data-index')];
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
        this.restyle = function () { self.redraw(); };
        if (DARK && DARK.addEventListener) {
            DARK.addEventListener('change', this.restyle);
        }
    };

    Widget.prototype.applyOptions = function () {
        var options = this.options;
        this.$title.text(options.title || '').toggle(!!options.title);
        this.$legend.toggle(options.legend !== false);
    };

    /** Change options (e.g. {dimension: [...]}) and redraw in place. */
    Widget.prototype.update = function (options) {
        var before = this.options;
        this.options = $.extend({}, before, options);
        if (this.options.url !== before.url || this.options.key !== before.key) {
            this.client = hw(this.options.url, this.options.key);
        }
        var same = ['pk', 'dimension', 'url'].every(function (name) {
            return JSON.stringify(before[name]) === JSON.stringify(this.options[name]);
        }, this);
        if (!same) {
            this.colorOf = {};
        }
        this.range.changed(hw.rangeOf(before), hw.rangeOf(this.options));
        this.applyOptions();
        this.refresh();
    };

    /** Show `range` ({range}, {from, to} or {period}); `how` says why, for the page. */
    Widget.prototype.setRange = function (range, how) {
        this.options = $.extend({}, this.options, {range: null, from: null, to: null, period: null},
                                range);
        this.$element.trigger('hailwhalerange', [hw.rangeOf(this.options), how]);
        this.refresh();
    };

    /** Show every child (threshold 0, the most per parent), or the server's defaults again. */
    Widget.prototype.showAll = function (all) {
        var change = all ? {threshold: 0, limit: 0} : {threshold: null, limit: null};
        this.update(change);
        this.$element.trigger('hailwhaleoptions', [change]);
    };

    Widget.prototype.abort = function () {
        $.each(this.requests, function (i, request) {
            if (request.abort) {
                request.abort();
            }
        });
        this.requests = [];
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
        this.abort();
        var self = this;
        var generation = ++this.generation;
        var current = function () { return generation === self.generation; };
        this.fetch(current).done(function (data) {
            if (current()) {
                try {
                    self.draw(data);
                } catch (error) {
                    self.showError('Could not draw the graph: ' + error.message);
                    if (window.console) {
                        window.console.error(error);
                    }
                }
            }
        }).fail(function (message) {
            if (current() && message) {
                self.showError(message);
            }
        }).always(function () {
            if (current()) {
                self.requests = [];
                self.schedule();
            }
        });
    };

    /** A request of this refresh: aborted by the next; fails with the message to show. */
    Widget.prototype.ask = function (request) {
        var client = this.client;
        this.requests.push(request);
        return request.then(function (answer) {
            return answer;  // the answer alone, not jQuery's (data, status, xhr)
        }, function (failed, status) {
            return $.Deferred().reject(status === 'abort' ? null : client.failure(failed)).promise();
        });
    };

    /** Everything one draw needs, as a promise of {known, metrics, answer, totals, ...}. */
    Widget.prototype.fetch = function (current) {
        var self = this;
        var options = this.options;
        var wanted = hw.metricsOf(options);
        return hw.meta.known(this.client, options.pk, this.metaStale).then(function (known) {
            var problems = $.map(wanted, function (metric) { return known.unknown(metric); });
            var metrics = wanted.filter(function (metric) { return !known.unknown(metric); });
            self.metaStale = problems.length > 0;  // counted since? ask /meta again next time
            if (!current()) {
                return $.Deferred().reject(null).promise();
            }
            if (!metrics.length) {
                return $.Deferred().reject(problems.join('\n')).promise();
            }
            var asked = $.extend({}, options, {metric: metrics, metrics: null});
            return self.fetchPrevious(asked).then(function (previous) {
                // Comparing: the period that keeps the previous window answers both.
                var main = previous && previous.answer
                    ? $.extend({}, asked, {period: previous.answer.period}) : asked;
                return self.ask(self.client.series(main)).then(function (answer) {
                    return self.fetchAround(current, main, answer, previous).then(function (around) {
                        return $.extend({known: known, metrics: metrics, problems: problems,
                                         answer: answer}, around);
                    });
                });
            });
        });
    };

    /** A failed request that should not fail the graph: its message, as a value. */
    function spared(request) {
        return request.then(null, function (message) {
            return message == null ? $.Deferred().reject(null).promise()  // aborted
                                   : $.Deferred().resolve({problem: message}).promise();
        });
    }

    /** With `compare` and a range: the parent's window just before it, at the finest
     * period that keeps it ({answer, window}); else null. */
    Widget.prototype.fetchPrevious = function (asked) {
        var window = this.options.compare ? hw.previousOf(this.options, Date.now() / 1000) : null;
        if (!window) {
            return $.Deferred().resolve(null).promise();
        }
        var before = $.extend({}, asked, {range: null, depth: 0}, window);
        return spared(this.ask(this.client.series(before)).then(function (answer) {
            return {answer: answer, asked: before};
        }));
    };

    /** For the window `answer` covers: the totals, all children, the previous window's
     * totals (or, for a period's latest window, its points too). */
    Widget.prototype.fetchAround = function (current, asked, answer, previous) {
        var options = this.options;
        var metrics = asked.metric;
        var first = answer.series.length ? answer.series[0][1][metrics[0]] || [] : [];
        if (!first.length || !current()) {
            return $.Deferred().resolve({totals: [], children: null, previous: null}).promise();
        }
        var step = first.length > 1 ? first[1][0] - first[0][0] : hw.text.period(answer.period)[0] * 1000;
        var from = first[0][0] / 1000;
        var to = first[first.length - 1][0] / 1000;
        // The buckets drawn: the same range in the same period (a live window may have
        // moved on by a bucket since; a first bucket's own start may be past what the
        // period keeps, so it is not asked for by its stamp).
        var exact = {period: answer.period};
        var totals = this.ask(this.client.rows(hw.graphParams($.extend({}, asked, exact))));
        var children = options.depth >= 1 ? this.ask(this.client.dimensions(hw.graphParams($.extend(
            {}, asked, exact, {metric: this.sortMetric(metrics), depth: 0, threshold: null,
                               limit: null, sort: null})))) : null;
        var before = null;
        if (previous && previous.answer) {
            before = $.extend({}, previous.asked, {period: answer.period});
        } else if (options.compare && !previous) {
            // A period's latest window: the one before it, which that period may not keep.
            var length = to - from + step / 1000;
            before = $.extend({}, asked, exact, {range: null, from: from - length, to: to - length,
                                                 depth: 0});
            previous = spared(this.ask(this.client.series(before)).then(function (points) {
                return {answer: points};
            }));
        }
        var rows = before ? spared(this.ask(this.client.rows(hw.graphParams(before)))) : null;
        return $.when(totals, children, previous, rows).then(function (sums, dims, was, wasSums) {
            if (was && wasSums) {
                was = wasSums.problem ? wasSums : $.extend({rows: wasSums}, was);
            }
            return {totals: sums, children: dims, previous: was, step: step};
        });
    };

    Widget.prototype.schedule = function () {
        var options = this.options;
        // A range that ends at a fixed time does not move: nothing to poll for.
        if (this.destroyed || !options.autoupdate || (options.to != null && options.to !== '' &&
                                                       !/^\s*(-|now)/.test(String(options.to)))) {
            return;
        }
        var self = this;
        clearTimeout(this.timer);
        this.timer = setTimeout(function () {
            self.timer = null;
            self.refresh();
        }, Math.max(200, +options.interval || DEFAULTS.interval));
    };

    Widget.prototype.colorFor = function (entry, colors) {
        var palette = this.options.colors;
        if (entry.level === 0) {
            return palette ? palette[0] : colors.parent;
        }
        var children = palette ? palette.slice(1) : COLORS;
        if (!this.colorOf[entry.key]) {
            this.colorOf[entry.key] = children[Object.keys(this.colorOf).length %
                                               Math.max(1, children.length)];
        }
        return this.colorOf[entry.key];
    };

    /** One entry per series, in the server's order: the parent first, then each child
     * (ranked) followed by its own. */
    Widget.prototype.entriesOf = function (series, colors) {
        var self = this;
        var parent = series.length ? series[0][2] : [];
        return $.map(series, function (one) {
            var path = one[2];
            var level = path.length - parent.length;
            var entry = {key: one[0], path: path, level: level, points: one[1] || {},
                         label: level === 0 ? (path.length ? path.join(' › ') : 'overall')
                                            : path.slice(parent.length).join(' › ')};
            entry.color = self.colorFor(entry, colors);
            return [entry];
        });
    };

    /** The metric that ranks children: `sort` (a leading `-` is the server's to ignore). */
    Widget.prototype.sortMetric = function (metrics) {
        return this.options.sort ? String(this.options.sort).replace(/^-/, '') : metrics[0];
    };

    /** The children the threshold or the limit left out, from /dimensions' list. */
    Widget.prototype.hiddenOf = function (entries, totals, children, metrics) {
        var options = this.options;
        if (!children || !entries.length) {
            return null;
        }
        var shown = {};
        $.each(entries, function (i, entry) {
            if (entry.level === 1) {
                shown[entry.key] = true;
            }
        });
        var left = children.children.filter(function (child) { return !shown[child.key]; });
        var threshold = options.threshold == null ? 0.1 : +options.threshold;
        var sort = this.sortMetric(metrics);
        var parentTotal = (totals[entries[0].key] || {})[sort];
        var small = parentTotal == null ? null : left.filter(function (child) {
            return Math.abs(child.totals[sort] || 0) < threshold * Math.abs(parentTotal);
        }).length;
        return {count: left.length, small: small, threshold: threshold,
                limit: options.limit == null ? 10 : (+options.limit || 100),
                parent: entries[0].label, all: threshold === 0, names: left.map(function (c) {
                    return c.name;
                })};
    };

    Widget.prototype.draw = function (data) {
        var self = this;
        var options = this.options;
        var colors = hw.theme(this.element);
        var metrics = data.metrics;
        var entries = this.entriesOf(data.answer.series, colors);
        var totals = {};
        $.each(data.totals.length ? data.totals[0][1] : [], function (i, row) {
            totals[row[0]] = row[1];
        });
        var previous = null;
        var notes = data.problems.slice();
        if (data.previous && data.previous.problem) {
            notes.push('No previous window to compare: ' + data.previous.problem);
        } else if (data.previous && data.previous.answer.series.length && entries.length) {
            // Drawn over this window: bucket i of the previous one over bucket i of this one.
            var before = data.previous.answer.series[0];
            var now = entries[0].points[metrics[0]];
            var then = before[1][metrics[0]] || [];
            var shift = now.length && then.length ? now[0][0] - then[0][0] : 0;
            var shifted = {};
            $.each(before[1], function (metric, points) {
                shifted[metric] = $.map(points, function (p) {
                    return p[0] + shift <= now[now.length - 1][0] ? [[p[0] + shift, p[1]]] : null;
                });
            });
            previous = {key: before[0] + ' (previous)', path: before[2], level: 0, previous: true,
                        label: 'previous ' + hw.text.duration(shift / 1000),
                        color: colors.parent, points: shifted};
            var rows = (data.previous.rows || []).length ? data.previous.rows[0][1] : [];
            if (rows.length) {
                totals[previous.key] = rows[0][1];
            }
        }
        var unstackable = $.map(metrics, function (metric) {
            return [options.area ? data.known.unstackable(metric) : null];
        });
        var drawn = this.panels.draw(entries, metrics, {
            height: this.fixedHeight ? null : (+options.height || 260), zoom: options.zoom !== false,
            dark: !!(DARK && DARK.matches), area: !!options.area, unstackable: unstackable,
            log: !!options.log, previous: previous, colors: colors, flot: options.flot
        });
        this.plot = this.panels.plots()[0] || null;
        this.step = data.step || 0;
        this.window = drawn.x;
        this.drawn = {entries: entries, keys: previous ? entries.concat([previous]) : entries,
                      metrics: metrics, data: data};
        this.hideError();
        this.$note.text(drawn.empty ? 'Nothing counted in this window yet' : '').toggle(drawn.empty);
        this.legend.render(this.drawn.keys, metrics, totals,
                           {drilldown: !!options.drilldown, area: !!options.area});
        var hidden = this.hiddenOf(entries, totals, data.children, metrics);
        hw.hiddenNote(this.$hidden, hidden, function (all) { self.showAll(all); });
        this.$notes.text(notes.join('\n')).toggle(notes.length > 0);
        this.range.sync(data.known.periods, data.answer.period, drawn.x, this.step);
        this.draws++;
        this.$element.attr({'data-hailwhale-state': 'ready', 'data-hailwhale-draws': this.draws});
        this.$element.trigger('hailwhaledraw', [{
            entries: entries, draws: this.draws, metrics: metrics, period: data.answer.period,
            from: drawn.x.min / 1000, to: drawn.x.max / 1000, totals: totals, hidden: hidden,
            range: hw.rangeOf(options), known: data.known
        }]);
    };

    /** Draw the last answer again (the colour scheme changed). */
    Widget.prototype.redraw = function () {
        if (this.drawn && !this.destroyed) {
            this.panels.clear();
            this.legend.reset();
            this.draws--;  // the same draw, restyled
            this.draw(this.drawn.data);
        }
    };

    Widget.prototype.hover = function (pos) {
        var drawn = this.drawn;
        if (!drawn || !drawn.entries.length || !this.step || pos.x == null) {
            return;
        }
        var first = drawn.entries[0].points[drawn.metrics[0]] || [];
        var index = Math.round((pos.x - (first.length ? first[0][0] : 0)) / this.step);
        if (index < 0 || index >= first.length) {
            this.unhover();
            return;
        }
        var ms = first[index][0];
        this.panels.cross(ms);
        var heading = hw.text.bucketTime(ms, this.step) + ' · ' + hw.text.span(this.step) + ' bucket';
        this.tip.show(drawn.keys, drawn.metrics, index, heading, {x: pos.pageX, y: pos.pageY});
    };

    Widget.prototype.unhover = function () {
        this.tip.hide();
        this.panels.cross(null);
    };

    Widget.prototype.resize = function () {
        if (!this.destroyed) {
            this.panels.resize();
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

    /** Stop polling, abort the requests in flight, and give the element back as it was. */
    Widget.prototype.destroy = function () {
        if (this.destroyed) {
            return;
        }
        this.destroyed = true;
        this.generation++;
        clearTimeout(this.timer);
        this.timer = null;
        this.abort();
        $(window).off('.' + this.ns);
        if (DARK && DARK.removeEventListener) {
            DARK.removeEventListener('change', this.restyle);
        }
        this.panels.clear();
        this.plot = null;
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
}(window.jQuery));
