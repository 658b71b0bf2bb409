/*! hailwhale.range.js: the graph's time range: the picker, drag-to-zoom and the way back out, the bucket size. */
/*
 * The toolbar above the plot: a range picker (last 15 min to 30 d, each configured
 * period's window, a custom from/to), a "zoom out" button, the bucket size the
 * server answered with, and the log-scale and previous-window toggles. Dragging
 * across a plot (flot's selection plugin, part of the vendored flot bundle) zooms
 * to that stretch: the graph asks again with `from`/`to` and no period, so the
 * server answers with the finest period that covers it. Zooms stack up; "zoom out"
 * walks back down the stack, then widens a fixed range twice over.
 * A range is {range: '6h'} (the last 6 hours), {from, to} (any spelling the server
 * takes) or {period: '15s:3h'} (that period's latest window); previousOf() gives
 * the window just before one, to compare. Needs jQuery and hailwhale.format.js.
 */
(function ($) {
    'use strict';

    if (!$ || !$.hailwhale || !$.hailwhale.text) {
        throw new Error('hailwhale.range.js needs jQuery and hailwhale.format.js on the page first');
    }

    var text = $.hailwhale.text;
    var PRESETS = {'15m': 'last 15 min', '1h': 'last hour', '6h': 'last 6 hours',
                   '24h': 'last 24 hours', '7d': 'last 7 days', '30d': 'last 30 days'};
    var KEYS = ['range', 'from', 'to', 'period'];

    /** The range options in force in `options`. */
    function rangeOf(options) {
        var range = {};
        $.each(KEYS, function (i, name) {
            if (options[name] != null && options[name] !== '') {
                range[name] = options[name];
            }
        });
        return range;
    }

    /** A range as text, the same whether its times came as numbers or from a URL. */
    function spelled(range) {
        return $.map(KEYS, function (name) {
            return range[name] == null ? '' : name + '=' + String(range[name]);
        }).join('&');
    }

    /** Whether `when` is a fixed time (epoch seconds or ISO 8601), not `-6h` or `now`. */
    function fixed(when) {
        return when != null && when !== '' && !/^\s*(-|now\s*$)/.test(String(when));
    }

    function presetLabel(range) {
        range = String(range).replace(/^-/, '');
        if (PRESETS.hasOwnProperty(range)) {
            return PRESETS[range];
        }
        var seconds = text.seconds(String(range).replace(/^-/, '').replace(/min$/, 'm'));
        return 'last ' + (isNaN(seconds) ? range : text.duration(seconds));
    }

    /** Seconds before now of a relative time (`-6h`, `now-2d`, `now`), or NaN. */
    function ago(when) {
        var match = /^\s*(?:now)?\s*(?:-\s*(\d+\s*(?:mo|s|m|h|d|w|y)))?\s*$/.exec(String(when));
        return match ? (match[1] ? text.seconds(match[1].replace(/\s+/g, '')) : 0) : NaN;
    }

    /** Epoch seconds of `when` (epoch seconds, ISO 8601, or relative), by this clock. */
    function epoch(when, now) {
        var before = ago(when);
        if (!isNaN(before)) {
            return now - before;
        }
        if (/^\s*\d+(\.\d*)?\s*$/.test(String(when))) {
            return +when;
        }
        var text8601 = String(when).trim();
        // No zone means UTC, as the server reads it.
        var parsed = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text8601) || !/T/.test(text8601)
                                ? text8601 : text8601 + 'Z');
        return parsed / 1000;
    }

    /**
     * The window of the same length just before the range in `options`, for comparing:
     * {from, to} (relative when the range is), or null when the range is a period's
     * latest window (the previous one is older than the period keeps).
     */
    function previousOf(options, now) {
        var range = rangeOf(options);
        if (range.range) {
            var length = text.seconds(String(range.range).replace(/^-/, ''));
            return {from: '-' + 2 * length + 's', to: '-' + length + 's'};
        }
        if (range.from == null) {
            return null;
        }
        var start = ago(range.from);
        var end = range.to == null ? 0 : ago(range.to);
        if (!isNaN(start) && !isNaN(end)) {
            return {from: '-' + (2 * start - end) + 's', to: '-' + start + 's'};
        }
        start = epoch(range.from, now);
        end = range.to == null ? now : epoch(range.to, now);
        return {from: Math.floor(2 * start - end), to: Math.ceil(start)};
    }

    /** `ms` as a datetime-local input's value, in the viewer's zone. */
    function localInput(ms) {
        var date = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
        return date.toISOString().slice(0, 16);
    }

    /** The toolbar of `widget` in `$bar`; the widget calls sync() after each draw. */
    function Range(widget, $bar) {
        var self = this;
        this.widget = widget;
        this.stack = [];  // the ranges zoomed in from, the latest last
        this.$bar = $bar;
        this.$choice = $('<select class="hailwhale-range" aria-label="Time range"></select>')
            .appendTo($bar).on('change', function () { self.choose($(this).val()); });
        this.$custom = $('<span class="hailwhale-custom"></span>').hide().appendTo($bar);
        this.$from = $('<input type="datetime-local" class="hailwhale-from" aria-label="From">')
            .appendTo(this.$custom);
        this.$to = $('<input type="datetime-local" class="hailwhale-to" aria-label="To">')
            .appendTo(this.$custom);
        $('<button type="button" class="hailwhale-apply">Show</button>').appendTo(this.$custom)
            .on('click', function () { self.applyCustom(); });
        this.$out = $('<button type="button" class="hailwhale-zoom-out" title="Back to the range ' +
                      'before the last zoom">Zoom out</button>').hide().appendTo($bar)
            .on('click', function () { self.back(); });
        this.$bucket = $('<span class="hailwhale-bucket"></span>').appendTo($bar);
        this.$log = this.toggle('log', 'log scale', 'A logarithmic y axis: a burst does not ' +
                                'flatten everything else');
        this.$compare = this.toggle('compare', 'vs previous', 'The previous window of the same ' +
                                    'length, dashed');
    }

    Range.prototype.toggle = function (option, label, title) {
        var widget = this.widget;
        var $box = $('<input type="checkbox">').addClass('hailwhale-' + option);
        $('<label class="hailwhale-toggle"></label>').attr('title', title).append($box)
            .append(document.createTextNode(' ' + label)).appendTo(this.$bar);
        $box.on('change', function () {
            var change = {};
            change[option] = this.checked;
            widget.update(change);
            widget.$element.trigger('hailwhaleoptions', [change]);
        });
        return $box;
    };

    /** The picker's value for the range in force. */
    Range.prototype.current = function (periods) {
        var range = rangeOf(this.widget.options);
        if (range.range) {
            return 'range:' + String(range.range).replace(/^-/, '');
        }
        if (range.from != null || range.to != null) {
            return 'custom';
        }
        var period = range.period || periods[0];
        return period ? 'period:' + period : '';
    };

    /** Bring the toolbar in line with what was drawn: `answered` the period, `x` the
     * window's first and last bucket (ms), `step` the bucket size (ms). */
    Range.prototype.sync = function (periods, answered, x, step) {
        var options = this.widget.options;
        var value = this.current(periods);
        var choices = $.map(Object.keys(PRESETS), function (preset) {
            return [['range:' + preset, PRESETS[preset]]];
        });
        $.each(periods, function (i, period) {
            choices.push(['period:' + period, text.periodLabel(period)]);
        });
        if (value && !choices.some(function (c) { return c[0] === value; }) && value !== 'custom') {
            choices.push([value, value.indexOf('range:') === 0 ? presetLabel(value.slice(6))
                                                               : text.periodLabel(value.slice(7))]);
        }
        choices.push(['custom', 'custom range…']);
        var signature = JSON.stringify(choices);
        if (signature !== this.choices) {
            this.choices = signature;
            this.$choice.empty();
            $.each(choices, function (i, choice) {
                $('<option></option>').val(choice[0]).text(choice[1]).appendTo(this.$choice);
            }.bind(this));
        }
        this.$choice.val(value);
        if (value === 'custom' && x && !this.$custom.is(':visible')) {
            this.$from.val(localInput(x.min));
            this.$to.val(localInput(x.max + step));
        }
        this.$custom.toggle(value === 'custom');
        var out = options.zoom !== false && (this.stack.length > 0 || fixed(options.from));
        this.$out.toggle(out);
        this.$bucket.text(step ? text.span(step) + ' buckets' + (answered ? ' (' + answered + ')' : '')
                               : '');
        this.$log.prop('checked', !!options.log);
        this.$compare.prop('checked', !!options.compare);
        var tools = options.toolbar !== false;
        this.$bar.children().not(this.$out).toggle(tools);
        this.$custom.toggle(tools && value === 'custom');
        this.$bar.toggle(tools || out);  // without the toolbar, still a way back out
    };

    Range.prototype.choose = function (value) {
        if (value === 'custom') {
            this.$custom.show();
            var x = this.widget.window;
            if (x) {
                this.$from.val(localInput(x.min));
                this.$to.val(localInput(x.max + this.widget.step));
            }
            return;
        }
        this.stack = [];
        var parts = /^(range|period):(.*)$/.exec(value || '');
        var range = {};
        if (parts) {
            range[parts[1]] = parts[2];
        }
        this.widget.setRange(range, 'pick');
    };

    Range.prototype.applyCustom = function () {
        var from = new Date(this.$from.val()).getTime();
        var to = new Date(this.$to.val()).getTime();
        if (isNaN(from) || (this.$to.val() && isNaN(to))) {
            this.widget.showError('Pick the start (and end) of the range: both are a date and a time');
            return;
        }
        this.stack = [];
        var range = {from: Math.floor(from / 1000)};
        if (!isNaN(to)) {
            range.to = Math.ceil(to / 1000);
        }
        this.widget.setRange(range, 'pick');
    };

    /** Zoom to [fromMs, toMs], remembering the range to come back to. */
    Range.prototype.zoom = function (fromMs, toMs) {
        this.stack.push(rangeOf(this.widget.options));
        this.widget.setRange({from: Math.floor(fromMs / 1000), to: Math.ceil(toMs / 1000)}, 'zoom');
    };

    /** Back out: to the range before the last zoom; else a fixed range twice as long. */
    Range.prototype.back = function () {
        if (this.stack.length) {
            this.widget.setRange(this.stack.pop(), 'back');
            return;
        }
        var x = this.widget.window;
        if (!x) {
            return;
        }
        var now = Date.now();
        var length = x.max + this.widget.step - x.min;
        var range = {from: Math.floor((x.min - length / 2) / 1000)};
        if (x.max + length / 2 < now) {
            range.to = Math.ceil((x.max + length / 2) / 1000);
        }
        this.widget.setRange(range, 'back');
    };

    /** The page changed the range (its URL, Back): a step back down the stack pops it. */
    Range.prototype.changed = function (before, after) {
        var top = this.stack.length ? spelled(this.stack[this.stack.length - 1]) : null;
        if (spelled(after) === top) {
            this.stack.pop();
        } else if (spelled(after) !== spelled(before)) {
            this.stack = [];
        }
    };

    $.hailwhale.Range = Range;
    $.hailwhale.rangeOf = rangeOf;
    $.hailwhale.previousOf = previousOf;
    $.hailwhale.fixedTime = fixed;
}(window.jQuery));
