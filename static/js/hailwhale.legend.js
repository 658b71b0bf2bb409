/*! hailwhale.legend.js: the graph in words: legend with window totals, hidden children, hover values. */
/*
 * The legend lists every series in the server's order with its total over the
 * window (from /totals, so it agrees with the totals a page shows); a note says
 * how many children the threshold or the limit left out, with a button to show
 * them; the tooltip lists every series' value at the hovered bucket. Plain HTML
 * (flot 4's SVG legend ignores clicks and pastes labels in as markup). Needs
 * jQuery, hailwhale.client.js and hailwhale.format.js.
 */
(function ($) {
    'use strict';

    if (!$ || !$.hailwhale || !$.hailwhale.text || !$.hailwhale.sortMetric) {
        throw new Error('hailwhale.legend.js needs jQuery, hailwhale.client.js and ' +
                        'hailwhale.format.js on the page first');
    }

    var text = $.hailwhale.text;

    function swatch(entry) {
        var $i = $('<i></i>').css(entry.previous ? {borderColor: entry.color} : {background: entry.color});
        return $i.toggleClass('hailwhale-dashed', !!entry.previous);
    }

    function totalsText(totals, metrics) {
        if (!totals) {
            return '';
        }
        return $.map(metrics, function (metric) { return text.exact(totals[metric]); }).join(' · ');
    }

    /** The legend under the plot, in `$legend`. */
    function Legend($legend) {
        this.$legend = $legend;
        this.signature = null;
    }

    /** entries: {key, label, level, color, path, previous}; totals: key -> {metric: total}. */
    Legend.prototype.render = function (entries, metrics, totals, settings) {
        var signature = JSON.stringify([$.map(entries, function (e) {
            return [[e.key, e.color, e.label, totals[e.key] || null]];
        }), metrics, settings]);
        if (signature === this.signature) {
            return;  // unchanged: leave the DOM alone, no flicker
        }
        this.signature = signature;
        var $legend = this.$legend.empty();
        $.each(entries, function (i, entry) {
            var button = settings.drilldown && entry.level > 0 && !entry.previous;
            var total = totalsText(totals[entry.key], metrics);
            var $key = $(button ? '<button type="button"></button>' : '<span></span>')
                .addClass('hailwhale-key hailwhale-level' + Math.min(entry.level, 3))
                .toggleClass('hailwhale-stacked', settings.area && entry.level === 1)
                .attr({'data-index': i, 'data-key': entry.key,
                       title: entry.label + (total ? ': ' + metrics.join(' · ') + ' ' + total +
                                             ' over the window' : '')});
            if (button) {
                $key.attr('title', 'Drill down into ' + entry.label +
                          (total ? ' (' + total + ' over the window)' : ''));
            }
            swatch(entry).appendTo($key);
            $('<span class="hailwhale-name"></span>').text(entry.label).appendTo($key);
            if (total) {
                $('<span class="hailwhale-total"></span>').text(total).appendTo($key);
            }
            $legend.append($key);
        });
    };

    Legend.prototype.reset = function () {
        this.signature = null;
    };

    /** The children the threshold or the limit left out of `entries` (the level-1 ones),
     * from /dimensions' `answer` for the same window: {count, small, names, ...}, or null. */
    function hiddenChildren(entries, totals, answer, options, metrics) {
        if (!answer || !entries.length) {
            return null;
        }
        var shown = {};
        $.each(entries, function (i, entry) {
            if (entry.level === 1) {
                shown[entry.key] = true;
            }
        });
        var left = answer.children.filter(function (child) { return !shown[child.key]; });
        var threshold = options.threshold == null ? 0.1 : +options.threshold;
        var sort = $.hailwhale.sortMetric(options, metrics);
        var parentTotal = (totals[entries[0].key] || {})[sort];
        var small = parentTotal == null ? null : left.filter(function (child) {
            return Math.abs(child.totals[sort] || 0) < threshold * Math.abs(parentTotal);
        }).length;
        return {count: left.length, small: small, threshold: threshold,
                limit: options.limit == null ? 10 : (+options.limit || 100),
                parent: entries[0].label, all: threshold === 0,
                names: $.map(left, function (child) { return child.name; })};
    }

    /**
     * The note on children left out, in `$note`: hidden is {count, parent, threshold, limit,
     * all}; `toggle(showAll)` is called by its button.
     */
    function hiddenNote($note, hidden, toggle) {
        $note.empty().attr('data-hidden', hidden ? hidden.count : 0);
        if (!hidden || (!hidden.count && !hidden.all)) {
            $note.hide();
            return;
        }
        var $text = $('<span class="hailwhale-hidden-count"></span>').appendTo($note);
        var $button = $('<button type="button" class="hailwhale-show-all"></button>');
        if (hidden.count) {
            var limit = 'past the limit of ' + hidden.limit + ' per parent';
            var under = 'under ' + Math.round(hidden.threshold * 1000) / 10 + '% of ' + hidden.parent;
            var why = hidden.small == null ? under + ' or ' + limit  // the parent's total is not known
                : $.map([[hidden.small, under], [hidden.count - hidden.small, limit]], function (part) {
                    return part[0] ? (part[0] === hidden.count ? '' : part[0] + ' ') + part[1] : null;
                }).join(', ');
            var names = hidden.names.length <= 3 ? ': ' + hidden.names.join(', ') : '';
            $text.text(hidden.count + (hidden.count === 1 ? ' child' : ' children') +
                       ' not drawn (' + why + ')' + names);
            if (!hidden.all) {
                $button.text('Show ' + (hidden.count === 1 ? 'it' : 'them')).on('click', function () {
                    toggle(true);
                });
            }
        } else {
            $text.text('Showing every child');
            $button.text('Hide the small ones').on('click', function () { toggle(false); });
        }
        if ($button.text()) {
            $button.appendTo($note);
        }
        $note.show();
    }

    /** The hover tooltip, in `$tip` over `$box`. */
    function Tip($tip, $box) {
        this.$tip = $tip;
        this.$box = $box;
    }

    /** Every series' value at bucket `index` (the entries' points per metric). */
    Tip.prototype.show = function (entries, metrics, index, heading, page) {
        var several = metrics.length > 1;
        var $table = $('<table></table>');
        if (several) {
            var $head = $('<tr><th></th></tr>').appendTo($table);
            $.each(metrics, function (i, metric) { $('<th></th>').text(metric).appendTo($head); });
        }
        $.each(entries, function (i, entry) {
            var $row = $('<tr></tr>').appendTo($table);
            $('<td></td>').append(swatch(entry)).append(document.createTextNode(entry.label))
                .appendTo($row);
            $.each(metrics, function (j, metric) {
                var point = (entry.points[metric] || [])[index];
                $('<td></td>').text(point ? text.exact(point[1]) : '–').appendTo($row);
            });
        });
        this.$tip.empty().append($('<div class="hailwhale-tip-time"></div>').text(heading))
            .append($table).show();
        var box = this.$box.offset();
        var left = page.x - box.left + 14;
        var width = this.$tip.outerWidth();
        if (left + width > this.$box.innerWidth()) {
            left = Math.max(0, page.x - box.left - width - 14);
        }
        this.$tip.css({left: left, top: page.y - box.top + 14});
    };

    Tip.prototype.hide = function () {
        this.$tip.hide();
    };

    $.hailwhale.Legend = Legend;
    $.hailwhale.Tip = Tip;
    $.hailwhale.hiddenChildren = hiddenChildren;
    $.hailwhale.hiddenNote = hiddenNote;
}(window.jQuery));
