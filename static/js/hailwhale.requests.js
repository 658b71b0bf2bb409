/*! hailwhale.requests.js: what one draw of a graph needs from the server, asked in order. */
/*
 * graph(options) asks, in order: /meta (once per pk: are the metrics known, which
 * are unique), with `compare` and a range the window just before it (so that
 * the period that keeps it answers both), /plotpoints (the graph, in the server's
 * order), then for the same range in the period that answered: /totals (the
 * legend's totals), /dimensions (every child, to count those the threshold left
 * out) and the previous window's totals. A new graph() or abort() aborts the
 * requests in flight. Needs jQuery, hailwhale.client.js, hailwhale.format.js,
 * hailwhale.meta.js and hailwhale.range.js.
 */
(function ($) {
    'use strict';

    var hw = $ && $.hailwhale;
    if (!hw || !hw.Client || !hw.text || !hw.meta || !hw.previousOf) {
        throw new Error('hailwhale.requests.js needs jQuery, hailwhale.client.js, ' +
                        'hailwhale.format.js, hailwhale.meta.js and hailwhale.range.js on the page first');
    }

    function resolved(value) {
        return $.Deferred().resolve(value).promise();
    }

    function rejected(message) {
        return $.Deferred().reject(message).promise();
    }

    /** A failed request that should not fail the graph: its message, as a value. */
    function spared(request) {
        return request.then(null, function (message) {
            return message == null ? rejected(null) : resolved({problem: message});  // null: aborted
        });
    }

    /** The requests of one graph to the server `client` talks to. */
    function Requests(client) {
        this.client = client;
        this.pending = [];
        this.metaStale = false;  // a metric was unknown: ask /meta again, it may be counted now
    }

    Requests.prototype.abort = function () {
        $.each(this.pending, function (i, request) {
            request.abort();
        });
        this.pending = [];
    };

    /** `request`'s answer alone (not jQuery's data, status, xhr); fails with the message
     * to show, or null when aborted. */
    Requests.prototype.ask = function (request) {
        var client = this.client;
        this.pending.push(request);
        return request.then(function (answer) {
            return answer;
        }, function (failed, status) {
            return rejected(status === 'abort' ? null : client.failure(failed));
        });
    };

    /**
     * Everything one draw of `options` needs, as a promise of {known, metrics, problems,
     * answer, totals, children, previous, step}; `current()` says whether it is still
     * wanted. It fails with the message to show (null: aborted, nothing to show).
     */
    Requests.prototype.graph = function (options, current) {
        var self = this;
        var wanted = hw.metricsOf(options);
        this.abort();
        return hw.meta.known(this.client, options.pk, this.metaStale).then(function (known) {
            var problems = $.map(wanted, function (metric) { return known.unknown(metric); });
            var metrics = wanted.filter(function (metric) { return !known.unknown(metric); });
            self.metaStale = problems.length > 0;
            if (!current()) {
                return rejected(null);
            }
            if (!metrics.length) {
                return rejected(problems.join('\n'));
            }
            var asked = $.extend({}, options, {metric: metrics, metrics: null});
            return self.previous(options, asked).then(function (previous) {
                // Comparing: the period that keeps the previous window answers both.
                var main = previous && previous.answer
                    ? $.extend({}, asked, {period: previous.answer.period}) : asked;
                return self.ask(self.client.series(main)).then(function (answer) {
                    return self.around(options, current, main, answer, previous);
                }).then(function (around) {
                    return $.extend({known: known, metrics: metrics, problems: problems}, around);
                });
            });
        });
    };

    /** With `compare` and a range: the parent's window just before it, at the finest
     * period that keeps it ({answer, asked}, or {problem}); else null. */
    Requests.prototype.previous = function (options, asked) {
        var window = options.compare ? hw.previousOf(options, Date.now() / 1000) : null;
        if (!window) {
            return resolved(null);
        }
        var before = $.extend({}, asked, {range: null, depth: 0}, window);
        return spared(this.ask(this.client.series(before)).then(function (answer) {
            return {answer: answer, asked: before};
        }));
    };

    /** For the window `answer` covers: its totals, every child, the previous window's
     * totals (and, for a period's latest window, its points too). */
    Requests.prototype.around = function (options, current, asked, answer, previous) {
        var metrics = asked.metric;
        var first = answer.series.length ? answer.series[0][1][metrics[0]] || [] : [];
        if (!first.length || !current()) {
            return resolved({answer: answer, totals: [], children: null, previous: null});
        }
        var step = first.length > 1 ? first[1][0] - first[0][0]
                                    : hw.text.period(answer.period)[0] * 1000;
        // The same range in the period that answered (not the first bucket's stamp: its
        // start may be older than the period keeps, and a live window moves on).
        var same = $.extend({}, asked, {period: answer.period});
        var client = this.client;
        var totals = this.ask(client.rows(hw.graphParams(same)));
        var children = options.depth >= 1 ? this.ask(client.dimensions(hw.graphParams($.extend(
            {}, same, {metric: hw.sortMetric(options, metrics), depth: 0, threshold: null,
                       limit: null, sort: null})))) : null;
        var before = null;
        if (previous && previous.answer) {
            before = $.extend({}, previous.asked, {period: answer.period});
        } else if (options.compare && !previous) {
            // A period's latest window: the one before it, which that period may not keep.
            var from = first[0][0] / 1000;
            var length = first[first.length - 1][0] / 1000 - from + step / 1000;
            before = $.extend({}, same, {range: null, from: from - length, to: from - step / 1000,
                                         depth: 0});
            previous = spared(this.ask(client.series(before)).then(function (points) {
                return {answer: points};
            }));
        }
        var rows = before ? spared(this.ask(client.rows(hw.graphParams(before)))) : null;
        return $.when(totals, children, previous, rows).then(function (sums, dims, was, wasSums) {
            if (was && wasSums) {
                was = wasSums.problem ? wasSums : $.extend({rows: wasSums}, was);
            }
            return {answer: answer, totals: sums, children: dims, previous: was, step: step};
        });
    };

    hw.Requests = Requests;
}(window.jQuery));
