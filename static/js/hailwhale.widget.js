/*! hailwhale.widget.js: one live HailWhale graph: fetches what its options ask for and draws it. */
/*
 * The plugin glue (jquery.hailwhale.js) makes one Widget per element. A refresh
 * has hailwhale.requests.js ask the server for what the options want; the pieces
 * draw it: hailwhale.panels.js (plots), hailwhale.legend.js (legend, hidden
 * children, tooltip), hailwhale.range.js (range picker, zoom). Polling is one
 * setTimeout chain, so no timer outlives destroy. The look is css/hailwhale.css.
 */
(function ($) {
    'use strict';

    var hw = $ && $.hailwhale;
    if (!hw || !hw.Client || !hw.text || !hw.meta || !hw.Range || !hw.Legend || !hw.Panels ||
            !hw.series || !hw.Requests) {
        throw new Error('hailwhale.widget.js needs jQuery, flot and the pieces before it ' +
                        '(hailwhale.client.js, .format, .meta, .range, .legend, .panels, ' +
                        '.series, .requests) on the page first');
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
    var DARK = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;
    var nextId = 0;

    function Widget(element, options) {
        this.element = element;
        this.$element = $(element);
        this.options = $.extend({}, DEFAULTS, options);
        this.ns = 'hailwhale' + (++nextId);
        this.requests = new hw.Requests(hw(this.options.url, this.options.key));
        this.plot = null;
        this.timer = null;
        this.generation = 0;
        this.draws = 0;
        this.colors = new hw.Colors();
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
            this.requests.abort();
            this.requests = new hw.Requests(hw(this.options.url, this.options.key));
        }
        var same = ['pk', 'dimension', 'url'].every(function (name) {
            return JSON.stringify(before[name]) === JSON.stringify(this.options[name]);
        }, this);
        if (!same) {
            this.colors.reset();
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
        this.requests.abort();
        var self = this;
        var generation = ++this.generation;
        var current = function () { return generation === self.generation; };
        this.requests.graph(this.options, current).done(function (data) {
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
                // The range picker stays usable: another range may well answer.
                hw.meta.known(self.requests.client, self.options.pk).done(function (known) {
                    self.range.sync(known.periods, null, self.window, self.step);
                });
            }
        }).always(function () {
            if (current()) {
                self.schedule();
            }
        });
    };

    Widget.prototype.schedule = function () {
        var options = this.options;
        // A range that ends at a fixed time does not move: nothing to poll for.
        if (this.destroyed || !options.autoupdate || hw.fixedTime(options.to)) {
            return;
        }
        var self = this;
        clearTimeout(this.timer);
        this.timer = setTimeout(function () {
            self.timer = null;
            self.refresh();
        }, Math.max(200, +options.interval || DEFAULTS.interval));
    };

    Widget.prototype.draw = function (data) {
        var self = this;
        var options = this.options;
        var colors = hw.theme(this.element);
        var metrics = data.metrics;
        var entries = hw.series.entries(data.answer.series, function (entry) {
            return self.colors.of(entry, options.colors, colors.parent);
        });
        var totals = hw.series.totals(data.totals);
        var previous = null;
        var notes = data.problems.slice();
        if (data.previous && data.previous.problem) {
            notes.push('No previous window to compare: ' + data.previous.problem);
        } else if (data.previous && data.previous.answer.series.length && entries.length) {
            var before = data.previous.answer.series[0];
            previous = hw.series.previous(before, entries[0], metrics[0], colors.parent);
            totals[previous.key] = hw.series.totals(data.previous.rows || [])[before[0]];
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
        var hidden = hw.hiddenChildren(entries, totals, data.children, options, metrics);
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
        this.requests.abort();
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
