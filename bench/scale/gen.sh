#!/bin/sh
# gen.sh KIND N: print a generated model of N steps on stdout.
#   dense  N dense layers written out line by line, each its own parameter
#          (2N lines: `param wI` and `hI = tanh(hI-1 @ wI + ...)`)
#   eltwise N lines of elementwise ops on one tensor
#   for    one `for` of N elementwise steps
kind=$1 n=$2
case $kind in
dense)
    awk -v n="$n" 'BEGIN {
        print "model dense" n " {"
        print "    batch B <= 8;"
        print "    input x: f32[B, 8];"
        print "    input y: f32[B, 8];"
        print "    h0 = x;"
        for (i = 1; i <= n; i++) {
            printf "    param w%d: f32[8, 8];\n", i
            printf "    h%d = tanh(h%d @ w%d);\n", i, i - 1, i
        }
        printf "    output out = h%d;\n", n
        printf "    loss = mse(h%d, y);\n", n
        print "    train loss with sgd(lr = 0.01);"
        print "}"
    }' ;;
eltwise)
    awk -v n="$n" 'BEGIN {
        print "model eltwise" n " {"
        print "    batch B <= 8;"
        print "    input x: f32[B, 8];"
        print "    param w: f32[8];"
        print "    h0 = x * w;"
        for (i = 1; i <= n; i++) {
            op = i % 3
            if (op == 0) printf "    h%d = tanh(h%d) * 0.5;\n", i, i - 1
            else if (op == 1) printf "    h%d = h%d + h%d * w;\n", i, i - 1, i - 1
            else printf "    h%d = sigmoid(h%d) - 0.25;\n", i, i - 1
        }
        printf "    output out = h%d;\n", n
        printf "    loss = sum(h%d);\n", n
        print "    train loss with sgd(lr = 0.01);"
        print "}"
    }' ;;
for)
    cat <<END
model for$n {
    batch B <= 8;
    input x: f32[B, 8];
    param w: f32[8];
    h = x * w;
    for i in 0..$n {
        h = tanh(h) * 0.5 + h * w;
    }
    output out = h;
    loss = sum(h);
    train loss with sgd(lr = 0.01);
}
END
    ;;
*)
    echo "usage: gen.sh dense|eltwise|for N" >&2
    exit 2 ;;
esac
