/* The rules of Connect Four (connect4.h). */
#include "connect4.h"

#include <string.h>

void c4_board_init(c4_board *b)
{
    memset(b, 0, sizeof *b);
}

c4_mark c4_to_move(int moves_made)
{
    return moves_made % 2 == 0 ? C4_X : C4_O;
}

static bool on_board(int row, int col)
{
    return row >= 0 && row < C4_ROWS && col >= 0 && col < C4_COLS;
}

int c4_landing_row(const c4_board *b, int col)
{
    if (col < 0 || col >= C4_COLS)
        return C4_ECOLUMN;
    for (int r = C4_ROWS - 1; r >= 0; r--)
        if (b->cell[r][col] == C4_EMPTY)
            return r;
    return C4_EFULL;
}

bool c4_full(const c4_board *b)
{
    for (int c = 0; c < C4_COLS; c++)
        if (b->cell[0][c] == C4_EMPTY)
            return false;
    return true;
}

int c4_count(const c4_board *b, c4_mark m)
{
    int n = 0;
    for (int r = 0; r < C4_ROWS; r++)
        for (int c = 0; c < C4_COLS; c++)
            n += b->cell[r][c] == m;
    return n;
}

/* The four directions, in the order c4_line_through documents: each a step (dr, dc) that walks
 * the line forwards. */
static const int DIRS[4][2] = {
    {0, 1},  /* horizontal, left to right */
    {1, 0},  /* vertical, top to bottom */
    {1, 1},  /* "\": top-left to bottom-right */
    {-1, 1}, /* "/": bottom-left to top-right */
};

bool c4_line_through(const c4_board *b, c4_pos p, c4_pos line[4])
{
    if (!on_board(p.row, p.col))
        return false;
    int m = b->cell[p.row][p.col];
    if (m == C4_EMPTY)
        return false;
    for (int d = 0; d < 4; d++) {
        int dr = DIRS[d][0], dc = DIRS[d][1];
        /* back to the start of p's run of m along this direction */
        int r = p.row, c = p.col, back = 0;
        while (on_board(r - dr, c - dc) && b->cell[r - dr][c - dc] == m) {
            r -= dr;
            c -= dc;
            back++;
        }
        int len = 0;
        while (on_board(r + len * dr, c + len * dc) && b->cell[r + len * dr][c + len * dc] == m)
            len++;
        if (len < 4)
            continue;
        if (line) {
            /* the first four of the run that still include p (p is `back` cells in) */
            int start = back > 3 ? back - 3 : 0;
            for (int i = 0; i < 4; i++) {
                line[i].row = r + (start + i) * dr;
                line[i].col = c + (start + i) * dc;
            }
        }
        return true;
    }
    return false;
}

bool c4_find_line(const c4_board *b, c4_pos line[4])
{
    for (int r = 0; r < C4_ROWS; r++)
        for (int c = 0; c < C4_COLS; c++)
            if (c4_line_through(b, (c4_pos){r, c}, line))
                return true;
    return false;
}

int c4_drop(c4_board *b, int col, c4_mark m, c4_move *out)
{
    if (m != C4_X && m != C4_O)
        return C4_EMARK;
    int row = c4_landing_row(b, col);
    if (row < 0)
        return row;
    b->cell[row][col] = (unsigned char)m;
    if (out) {
        memset(out, 0, sizeof *out);
        out->at = (c4_pos){row, col};
        if (c4_line_through(b, out->at, out->line))
            out->outcome = C4_WON;
        else if (c4_full(b))
            out->outcome = C4_DRAWN;
    }
    return 0;
}

void c4_format(const c4_board *b, char out[C4_CELLS + 1])
{
    static const char CH[3] = {'.', 'X', 'O'};
    for (int r = 0; r < C4_ROWS; r++)
        for (int c = 0; c < C4_COLS; c++)
            out[r * C4_COLS + c] = CH[b->cell[r][c] <= C4_O ? b->cell[r][c] : 0];
    out[C4_CELLS] = '\0';
}

int c4_parse(const char *s, c4_board *b)
{
    c4_board t;
    if (!s || strlen(s) != C4_CELLS)
        return C4_EINVALID;
    for (int i = 0; i < C4_CELLS; i++) {
        unsigned char v = s[i] == '.' ? C4_EMPTY : s[i] == 'X' ? C4_X : s[i] == 'O' ? C4_O : 9;
        if (v == 9)
            return C4_EINVALID;
        t.cell[i / C4_COLS][i % C4_COLS] = v;
    }
    /* gravity: nothing rests on an empty cell */
    for (int r = 0; r + 1 < C4_ROWS; r++)
        for (int c = 0; c < C4_COLS; c++)
            if (t.cell[r][c] != C4_EMPTY && t.cell[r + 1][c] == C4_EMPTY)
                return C4_EINVALID;
    int x = c4_count(&t, C4_X), o = c4_count(&t, C4_O);
    if (x != o && x != o + 1)
        return C4_EINVALID;
    *b = t;
    return 0;
}

int c4_play(c4_board *b, const int *cols, size_t n, c4_move *last)
{
    int moves = c4_count(b, C4_X) + c4_count(b, C4_O);
    c4_move mv;
    size_t i;
    for (i = 0; i < n; i++) {
        int rc = c4_drop(b, cols[i], c4_to_move(moves), &mv);
        if (rc)
            return rc;
        moves++;
        if (last)
            *last = mv;
        if (mv.outcome != C4_ONGOING) {
            i++;
            break;
        }
    }
    return (int)i;
}
