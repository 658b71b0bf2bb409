/*
 * The dashboard's children list and totals table, drawn from the graph's last draw
 * so that the three agree: the list has every child of the graph's window
 * (/dimensions) and marks those the graph leaves out; the table's first column is
 * the legend's totals, followed by each configured period's latest window, with
 * the graph's threshold and limit. As $.hailwhale.dashboardTables.
 */
(function ($) {
    'use strict';

    var text = $.hailwhale.text;

    /** Whether the graph drew the child with dim_key `key`. */
    function drawnKeys(draw) {
        var keys = {};
        $.each(draw.entries, function (i, entry) {
            keys[entry.key] = true;
        });
        return keys;
    }

    /**
     * The children list: answer is /dimensions' over the graph's window; a child the graph
     * (at depth 1 or more) leaves out is marked. `drill(path)` opens a child.
     */
    function children($list, answer, draw, parent, drill) {
        $list.empty();
        if (!answer.children.length) {
            $('<li class="empty"></li>').text('No children counted in this window.').appendTo($list);
            return;
        }
        var shown = draw.depth > 0 ? drawnKeys(draw) : null;
        $.each(answer.children, function (i, child) {
            var total = child.totals[Object.keys(child.totals)[0]];
            var left = shown && !shown[child.key];
            var $button = $('<button type="button"></button>')
                .attr('title', left ? 'Not in the graph (' + draw.why + '): drill down'
                                    : 'Drill down')
                .on('click', function () { drill(parent.concat([child.name])); });
            $('<span class="name"></span>').text(child.name).appendTo($button);
            if (left) {
                $('<span class="tag"></span>').text('not drawn').appendTo($button);
            }
            $('<span class="value"></span>').text(text.exact(total)).appendTo($button);
            $('<li></li>').toggleClass('not-drawn', !!left).append($button).appendTo($list);
        });
    }

    /**
     * The totals table: rows in the graph's order (the parent, its children), then any
     * a period's window adds; columns: the graph's window, then each period (`periods`:
     * [[period, [[dim_key, {metric: total}, path], ...]], ...], as the server ranks them).
     */
    function totals($table, draw, periods, parent, drill) {
        var metric = draw.metrics[0];
        var columns = [['this view', draw.totals]];
        var rows = $.map(draw.entries.filter(function (e) { return e.level <= 1; }), function (e) {
            return [[e.key, e.path]];
        });
        $.each(periods, function (i, period) {
            var byKey = {};
            $.each(period[1], function (j, row) {
                byKey[row[0]] = row[1];
                if (!rows.some(function (known) { return known[0] === row[0]; })) {
                    rows.push([row[0], row[2]]);
                }
            });
            columns.push([period[0], byKey]);
        });
        $table.empty();
        var $head = $('<tr></tr>').appendTo($('<thead></thead>').appendTo($table));
        $('<th scope="col"></th>').text(metric + ' in').appendTo($head);
        $.each(columns, function (i, column) {
            $('<th scope="col" class="num"></th>').text(column[0]).appendTo($head);
        });
        var $body = $('<tbody></tbody>').appendTo($table);
        $.each(rows, function (i, row) {
            var path = row[1];
            var $row = $('<tr></tr>').appendTo($body);
            var $name = $('<th scope="row"></th>').appendTo($row);
            if (i === 0) {
                $row.addClass('parent');
                $name.text(parent.length ? parent.join(' › ') : 'overall');
            } else {
                $('<button type="button"></button>').text(path.slice(parent.length).join(' › '))
                    .on('click', function () { drill(path); }).appendTo($name);
            }
            $.each(columns, function (j, column) {
                var value = (column[1][row[0]] || {})[metric];
                $('<td class="num"></td>').text(text.exact(value)).appendTo($row);
            });
        });
    }

    $.hailwhale.dashboardTables = {children: children, totals: totals};
}(window.jQuery));
